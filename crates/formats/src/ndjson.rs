//! NDJSON reader: one JSON object per line; blank lines are skipped.

use crate::format::{ImportFormat, io_error};
use crate::sink::Sink;
use ferry_core::{CoreError, CoreResult};
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read};

pub(crate) fn read<R: Read>(reader: R, sink: &mut Sink) -> CoreResult<()> {
    let mut reader = BufReader::with_capacity(1 << 18, reader);
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| io_error(ImportFormat::Ndjson, e))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        // Numbers read exactly: each is the f64 its digits name.
        let values: Map<String, Value> = match ferry_proto::exact::from_text(&line) {
            Ok(Value::Object(values)) => values,
            Ok(_) => {
                return Err(CoreError::MalformedNdjson(format!(
                    "line {number}: not a JSON object"
                )));
            }
            Err(e) => {
                return Err(CoreError::MalformedNdjson(format!(
                    "line {number}: not a JSON object: {e}"
                )));
            }
        };
        sink.choose_key(values.contains_key("id"));
        sink.record(values)
            .map_err(|e| e.at(format_args!("line {number}")))?;
    }
}
