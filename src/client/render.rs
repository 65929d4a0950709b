//! Terminal bytes as plain text (`logs --plain`): escape sequences removed, a line
//! rewritten with carriage returns or backspaces shown as it ended up.

/// Renders terminal output as text. `line` carries an unfinished line between calls.
pub struct Plain {
    line: Vec<char>,
    col: usize,
    state: State,
    pending: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    Escape,
    Csi,
    /// OSC, DCS and friends: until BEL or ST.
    String,
    StringEscape,
}

impl Default for Plain {
    fn default() -> Self {
        Plain { line: Vec::new(), col: 0, state: State::Text, pending: Vec::new() }
    }
}

impl Plain {
    /// Feeds bytes; returns the lines they finished (each with its `\n`).
    pub fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        for c in text.chars() {
            self.state = match (self.state, c) {
                (State::Text, '\x1b') => State::Escape,
                (State::Text, '\n') => {
                    out.extend(self.line.drain(..));
                    out.push('\n');
                    self.col = 0;
                    State::Text
                }
                (State::Text, '\r') => {
                    self.col = 0;
                    State::Text
                }
                (State::Text, '\x08') => {
                    self.col = self.col.saturating_sub(1);
                    State::Text
                }
                (State::Text, '\t') => {
                    let next = (self.col / 8 + 1) * 8;
                    while self.col < next {
                        self.put(' ');
                    }
                    State::Text
                }
                (State::Text, c) if c.is_control() => State::Text,
                (State::Text, c) => {
                    self.put(c);
                    State::Text
                }
                (State::Escape, '[') => State::Csi,
                (State::Escape, ']' | 'P' | 'X' | '^' | '_') => State::String,
                (State::Escape, '(' | ')' | '*' | '+' | '#' | '%') => State::Escape,
                (State::Escape, _) => State::Text,
                (State::Csi, c) if ('\x40'..='\x7e').contains(&c) => {
                    if c == 'K' {
                        self.line.truncate(self.col);
                    }
                    State::Text
                }
                (State::Csi, _) => State::Csi,
                (State::String, '\x07') => State::Text,
                (State::String, '\x1b') => State::StringEscape,
                (State::String, _) => State::String,
                (State::StringEscape, '\\') => State::Text,
                (State::StringEscape, _) => State::String,
            };
        }
        out
    }

    /// The unfinished last line, if any.
    pub fn finish(&mut self) -> String {
        let rest: String = self.line.drain(..).collect();
        self.col = 0;
        rest
    }

    fn put(&mut self, c: char) {
        if self.col < self.line.len() {
            self.line[self.col] = c;
        } else {
            self.line.push(c);
        }
        self.col += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_go_and_rewritten_lines_end_as_shown() {
        let mut plain = Plain::default();
        let out = plain.feed(b"\x1b[1;32mgreen\x1b[0m text\r\n");
        assert_eq!(out, "green text\r\n".replace('\r', ""));
        let out = plain.feed(b"progress 10%\rprogress 99%\rdone        \x1b[K\n");
        assert_eq!(out, "done        \n");
        let out = plain.feed(b"\x1b]0;title\x07abx\x08c\n");
        assert_eq!(out, "abc\n");
        // A UTF-8 sequence split across two reads.
        assert_eq!(plain.feed(&[0xc3]), "");
        assert_eq!(plain.feed(&[0xa9, b'\n']), "é\n");
        assert_eq!(plain.feed(b"tail"), "");
        assert_eq!(plain.finish(), "tail");
    }
}
