//! The subscribers' side of `loadgen subscribers`: an incremental `text/event-stream`
//! parser that checks each revocation record arrives once and with a growing id, and notes
//! when it arrived.

use std::collections::HashMap;

use super::UNSET;

/// What one subscriber saw.
pub(super) struct Tally {
    /// Per record index: when it first arrived (µs since the base), or [`UNSET`].
    pub(super) arrivals: Vec<u32>,
    pub(super) duplicates: u64,
    pub(super) out_of_order: u64,
    /// Events whose value is none of the minted tokens' (records of someone else).
    pub(super) foreign: u64,
    /// Revocation events received, and their bytes (fields, newlines and the blank line).
    pub(super) events: u64,
    pub(super) event_bytes: u64,
    /// Why the stream ended before it was told to stop.
    pub(super) ended: Option<String>,
}

impl Tally {
    /// Nothing seen yet, of `records` records.
    pub(super) fn new(records: usize) -> Self {
        Tally {
            arrivals: vec![UNSET; records],
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
            events: 0,
            event_bytes: 0,
            ended: None,
        }
    }

    /// Records seen for the first time so far (whatever their order).
    pub(super) fn first_arrivals(&self) -> u64 {
        self.events - self.foreign - self.duplicates
    }
}

/// The incremental parser of one `text/event-stream`.
pub(super) struct SseParser {
    line: Vec<u8>,
    is_revocation: bool,
    id: Option<i64>,
    record: Option<Option<u32>>,
    bytes: u64,
    last_id: i64,
}

impl SseParser {
    pub(super) fn new(cursor: i64) -> Self {
        SseParser {
            line: Vec::with_capacity(512),
            is_revocation: false,
            id: None,
            record: None,
            bytes: 0,
            last_id: cursor,
        }
    }

    /// Feeds a chunk that arrived at `at` (µs since the base).
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        at: u32,
        index: &HashMap<String, u32>,
        t: &mut Tally,
    ) {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            let line = std::mem::take(&mut self.line);
            self.bytes += line.len() as u64 + 1;
            self.field(&line, at, index, t);
            self.line = line;
            self.line.clear();
        }
        self.line.extend_from_slice(rest);
    }

    fn field(&mut self, line: &[u8], at: u32, index: &HashMap<String, u32>, t: &mut Tally) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(at, t);
            return;
        }
        if line.starts_with(b":") {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => self.is_revocation = value == b"revocation",
            b"id" => self.id = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
            b"data" => {
                self.record = Some(record_value(value).and_then(|v| index.get(v).copied()));
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, at: u32, t: &mut Tally) {
        let (is_revocation, id, record, bytes) = (
            std::mem::take(&mut self.is_revocation),
            self.id.take(),
            self.record.take(),
            std::mem::take(&mut self.bytes),
        );
        if !is_revocation {
            return;
        }
        t.events += 1;
        t.event_bytes += bytes;
        let id = id.unwrap_or(i64::MIN);
        let duplicate = matches!(record, Some(Some(i)) if t.arrivals[i as usize] != UNSET);
        if duplicate {
            t.duplicates += 1;
        } else if id <= self.last_id {
            t.out_of_order += 1;
        }
        self.last_id = self.last_id.max(id);
        match record {
            Some(Some(i)) if !duplicate => t.arrivals[i as usize] = at,
            Some(Some(_)) => {}
            _ => t.foreign += 1,
        }
    }
}

/// The `value` of a `WireRevocation` JSON object, found without a full parse (the values
/// of this benchmark need no escapes).
fn record_value(data: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"value\":\"";
    let start = data.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = data[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&data[start..start + len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> HashMap<String, u32> {
        [
            ("a".to_owned(), 0),
            ("b".to_owned(), 1),
            ("c".to_owned(), 2),
        ]
        .into_iter()
        .collect()
    }

    fn ev(id: i64, value: &str) -> String {
        format!(
            "event: revocation\ndata: {{\"id\":{id},\"kind\":\"jti\",\"value\":\"{value}\",\"expires_at\":1}}\nid: {id}\n\n"
        )
    }

    #[test]
    fn events_split_anywhere_are_parsed_once_each() {
        let idx = index();
        let mut t = Tally::new(3);
        let mut p = SseParser::new(4);
        let text = format!(":heartbeat\n\n{}{}", ev(5, "a"), ev(7, "b"));
        for (k, chunk) in text.as_bytes().chunks(7).enumerate() {
            p.feed(chunk, u32::try_from(k).unwrap(), &idx, &mut t);
        }
        assert_eq!(t.events, 2);
        assert_eq!((t.duplicates, t.out_of_order, t.foreign), (0, 0, 0));
        assert_ne!(t.arrivals[0], UNSET);
        assert_ne!(t.arrivals[1], UNSET);
        assert_eq!(t.arrivals[2], UNSET);
        assert_eq!(t.event_bytes, (ev(5, "a").len() + ev(7, "b").len()) as u64);
    }

    #[test]
    fn duplicates_out_of_order_and_foreign_records_are_counted() {
        let idx = index();
        let mut t = Tally::new(3);
        let mut p = SseParser::new(0);
        let text = [ev(2, "a"), ev(2, "a"), ev(3, "b"), ev(1, "c"), ev(9, "zz")].concat();
        p.feed(text.as_bytes(), 1, &idx, &mut t);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.foreign, 1);
        assert_eq!(t.events, 5);
    }

    #[test]
    fn the_cursor_counts_as_the_last_id() {
        let idx = index();
        let mut t = Tally::new(3);
        let mut p = SseParser::new(10);
        p.feed(ev(10, "a").as_bytes(), 1, &idx, &mut t);
        assert_eq!(t.out_of_order, 1);
    }
}
