//! A small Server-Sent Events parser (the WHATWG "event stream interpretation"), fed with
//! body chunks as they arrive. Lines are capped so that a hostile stream cannot grow the
//! buffer without bound.

/// One dispatched event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `event:` (empty means `message`).
    pub(crate) event: String,
    /// `data:` lines joined by `\n`.
    pub(crate) data: String,
    /// `id:` of this event, if it set one.
    pub(crate) id: Option<String>,
}

/// What one chunk produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SseItem {
    /// A complete event.
    Event(SseEvent),
    /// A comment line (the server's heartbeat).
    Comment,
}

/// A line longer than the cap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LineTooLong;

/// Incremental parser state.
#[derive(Debug)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended on `\r`: a following `\n` belongs to that line end.
    after_cr: bool,
    current: SseEvent,
    has_data: bool,
    max_line: usize,
}

impl SseParser {
    pub(crate) fn new(max_line: usize) -> Self {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            current: SseEvent::default(),
            has_data: false,
            max_line,
        }
    }

    /// Feeds bytes; completed events and comments are pushed onto `out`.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseItem>) -> Result<(), LineTooLong> {
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, out);
                    self.line = line;
                    self.line.clear();
                }
                _ => {
                    if self.line.len() >= self.max_line {
                        return Err(LineTooLong);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseItem>) {
        if line.is_empty() {
            if self.has_data {
                let mut event = std::mem::take(&mut self.current);
                if event.data.ends_with('\n') {
                    event.data.pop();
                }
                out.push(SseItem::Event(event));
            } else {
                self.current = SseEvent::default();
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            out.push(SseItem::Comment);
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "event" => self.current.event = value.to_owned(),
            "data" => {
                self.current.data.push_str(value);
                self.current.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.current.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseItem> {
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn events_comments_and_split_chunks() {
        let out = parse_chunks(&[
            b": heartbeat\n\nevent: revocation\r\nid: 7\r\nda",
            b"ta: {\"a\":1}\r",
            b"\n\r\ndata:x\ndata: y\n\n",
        ]);
        assert_eq!(
            out,
            vec![
                SseItem::Comment,
                SseItem::Event(SseEvent {
                    event: "revocation".into(),
                    data: "{\"a\":1}".into(),
                    id: Some("7".into()),
                }),
                SseItem::Event(SseEvent {
                    event: String::new(),
                    data: "x\ny".into(),
                    id: None,
                }),
            ]
        );
    }

    #[test]
    fn event_without_data_is_dropped_and_lines_are_capped() {
        assert!(parse_chunks(&[b"event: revocation\nid: 3\n\n"]).is_empty());
        let mut p = SseParser::new(8);
        let mut out = Vec::new();
        assert_eq!(p.feed(b"data: 0123456789", &mut out), Err(LineTooLong));
    }
}
