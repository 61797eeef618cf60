//! Query parameters, as a door received them (`a=1&tag=x&tag=y`).

use crate::error::{NodeError, NodeResult};
use ferry_proto::ErrorCode;

/// Query parameters as ordered pairs, so that a parameter may repeat (`tag=a&tag=b`).
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn parse(raw: Option<&str>) -> QueryPairs {
        QueryPairs(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> NodeResult<Option<T>> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    NodeError::new(
                        ErrorCode::InvalidRequest,
                        format!("'{name}' must be a number, got '{v}'"),
                    )
                })
            })
            .transpose()
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "yes"))
    }
}
