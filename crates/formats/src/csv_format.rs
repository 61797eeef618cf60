//! CSV reader. Column types come from an explicit schema or are inferred from the first
//! [`SAMPLE_ROWS`] records, which are held back until the types are known.

use crate::sink::{KeyRule, Sink};
use ferry_core::schema::{coerce_text, infer_text_type};
use ferry_core::{CoreError, CoreResult};
use ferry_proto::FieldType;
use serde_json::Map;
use std::io::{BufRead, Read};

pub(crate) const SAMPLE_ROWS: usize = 1000;

/// The separator a CSV's header line uses most, outside quotes: `,`, `;` (as spreadsheets
/// write in many locales) or a tab; `,` when none appears.
pub(crate) fn separator_of(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or(head);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let best = (0..3)
        .max_by_key(|i| (counts[*i], usize::from(*i == 0)))
        .unwrap_or(0);
    match counts[best] {
        0 => b',',
        _ => candidates[best],
    }
}

fn malformed(e: csv::Error) -> CoreError {
    let at = e
        .position()
        .map(|p| format!("line {}: ", p.line()))
        .unwrap_or_default();
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => CoreError::MalformedCsv(format!(
            "{at}the row has {len} fields but the header has {expected_len}"
        )),
        _ => CoreError::MalformedCsv(format!("{at}{e}")),
    }
}

pub(crate) fn read<R: Read>(reader: R, sink: &mut Sink, delimiter: Option<u8>) -> CoreResult<()> {
    let mut reader = std::io::BufReader::with_capacity(1 << 18, reader);
    let delimiter = match delimiter {
        Some(d) => d,
        None => {
            let head = reader
                .fill_buf()
                .map_err(|e| crate::format::io_error(crate::format::ImportFormat::Csv, e))?;
            separator_of(head)
        }
    };
    let mut csv = csv::ReaderBuilder::new()
        .buffer_capacity(1 << 18)
        .delimiter(delimiter)
        .from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(malformed)?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.is_empty() || headers.iter().any(String::is_empty) {
        return Err(CoreError::MalformedCsv(
            "line 1: the header must name every column".into(),
        ));
    }
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = headers.iter().find(|h| !names.insert(h.as_str())) {
        return Err(CoreError::MalformedCsv(format!(
            "line 1: the header names column '{twice}' twice; each column needs a name of its own"
        )));
    }
    sink.choose_key(headers.iter().any(|h| h == "id"));
    if let Some(KeyRule::Column(pk)) = sink.key_rule()
        && !headers.contains(pk)
    {
        return Err(CoreError::SchemaMismatch(format!(
            "primary key '{pk}' is not a column of the CSV header"
        )));
    }
    let mut records = csv.records();
    let mut sample = Vec::new();
    for record in records.by_ref().take(SAMPLE_ROWS) {
        sample.push(record.map_err(malformed)?);
    }
    let types = column_types(sink, &headers, &sample)?;
    let mut line = 1u64;
    for record in sample.into_iter().map(Ok).chain(records) {
        let record = record.map_err(malformed)?;
        line = record.position().map_or(line + 1, |p| p.line());
        let mut values = Map::new();
        for ((name, t), cell) in headers.iter().zip(&types).zip(record.iter()) {
            let value = coerce_text(*t, cell).map_err(|m| {
                CoreError::SchemaMismatch(format!("line {line}, column '{name}': {m}"))
            })?;
            if !value.is_null() {
                values.insert(name.clone(), value);
            }
        }
        sink.record(values)
            .map_err(|e| e.at(format_args!("line {line}")))?;
    }
    Ok(())
}

fn column_types(
    sink: &Sink,
    headers: &[String],
    sample: &[csv::StringRecord],
) -> CoreResult<Vec<FieldType>> {
    headers
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if sink.schema.is_strict() {
                return sink.schema.field_type(name).ok_or_else(|| {
                    CoreError::SchemaMismatch(format!("column '{name}' is not in the schema"))
                });
            }
            let t = infer_text_type(sample.iter().filter_map(|r| r.get(i)));
            // The primary key identifies rows: keep it an integer or a string.
            Ok(match (sink.key_rule(), t) {
                (Some(KeyRule::Column(pk)), FieldType::Integer | FieldType::String)
                    if pk == name =>
                {
                    t
                }
                (Some(KeyRule::Column(pk)), _) if pk == name => FieldType::String,
                _ => t,
            })
        })
        .collect()
}
