//! Rules for names people type: space names, titles, tags and markings.

use crate::error::{CoreError, CoreResult};

/// Space names appear in CLI arguments and URLs, so they are short and free of spaces and slashes.
pub fn check_space_name(name: &str) -> CoreResult<()> {
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(ok_char) {
        return Err(CoreError::InvalidRequest(format!(
            "space name '{name}' is not valid: use 1-64 letters, digits, '-', '_' or '.'"
        )));
    }
    if uuid_like(name) {
        return Err(CoreError::InvalidRequest(format!(
            "space name '{name}' looks like an id; choose a name that is not a UUID"
        )));
    }
    // Names end up in URLs (`/api/v1/spaces/{name}`) and paths, where dots alone mean "here"
    // and "up".
    if name.chars().all(|c| c == '.') {
        return Err(CoreError::InvalidRequest(format!(
            "space name '{name}' is only dots; add a letter or digit"
        )));
    }
    Ok(())
}

/// Whether a name would be taken for an id where spaces are named by id or name.
fn uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// A CRS is named `AUTHORITY:CODE`, e.g. `EPSG:4326` or `OGC:CRS84`.
pub fn check_crs(crs: &str) -> CoreResult<()> {
    let ok = crs.split_once(':').is_some_and(|(authority, code)| {
        !authority.is_empty()
            && authority.len() <= 16
            && authority.chars().all(|c| c.is_ascii_alphanumeric())
            && !code.is_empty()
            && code.len() <= 32
            && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
    });
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(format!(
            "CRS '{crs}' is not valid: name it AUTHORITY:CODE, e.g. EPSG:4326"
        )))
    }
}

pub fn check_title(title: &str) -> CoreResult<()> {
    if title.trim().is_empty() || title.chars().count() > 256 {
        return Err(CoreError::InvalidRequest(
            "a title must have 1-256 characters".to_string(),
        ));
    }
    Ok(())
}

pub fn check_description(text: &str) -> CoreResult<()> {
    if text.chars().count() > 4096 {
        return Err(CoreError::InvalidRequest(
            "a description must have at most 4096 characters".to_string(),
        ));
    }
    Ok(())
}

/// Markings are compared exactly across instances, so they are restricted to a portable alphabet.
pub fn check_markings(markings: &[String]) -> CoreResult<()> {
    for m in markings {
        let ok = !m.is_empty()
            && m.len() <= 64
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !ok {
            return Err(CoreError::InvalidMarking(format!(
                "marking '{m}' is not valid: use 1-64 ASCII letters, digits, '-', '_', '.' or ':'"
            )));
        }
    }
    Ok(())
}

pub fn check_tags(tags: &[String]) -> CoreResult<()> {
    if let Some(t) = tags
        .iter()
        .find(|t| t.trim().is_empty() || t.chars().count() > 64)
    {
        return Err(CoreError::InvalidRequest(format!(
            "tag '{t}' is not valid: tags have 1-64 characters"
        )));
    }
    Ok(())
}

/// Sorted and without repeats, so that equal sets compare equal.
pub fn normalize_set(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values.dedup();
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_names() {
        assert!(check_space_name("harbor-ops_2.0").is_ok());
        assert!(check_space_name("").is_err());
        assert!(check_space_name("a b").is_err());
        assert!(check_space_name("a/b").is_err());
        assert!(check_space_name(&"x".repeat(65)).is_err());
        assert!(check_space_name("0191a3b4-0000-7000-8000-000000000000").is_err());
        assert!(check_space_name("0123456789abcdef0123456789abcdef").is_err());
        assert!(check_space_name("cafe").is_ok());
        for dots in [".", "..", "..."] {
            assert!(check_space_name(dots).is_err(), "{dots}");
        }
        assert!(check_space_name(".hidden").is_ok());
    }

    #[test]
    fn crs_names() {
        assert!(check_crs("EPSG:4326").is_ok());
        assert!(check_crs("OGC:CRS84").is_ok());
        for bad in ["4326", "EPSG:", ":4326", "EPSG:43 26", "EPSG:4326;drop"] {
            assert!(check_crs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn markings() {
        assert!(check_markings(&["SECRET".into(), "nato:restricted".into()]).is_ok());
        let err = check_markings(&["top secret".into()]).unwrap_err();
        assert_eq!(err.code(), ferry_proto::ErrorCode::InvalidMarking);
    }
}
