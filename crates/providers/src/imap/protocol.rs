//! IMAP4rev1 (RFC 3501) on the wire: reading one response (a line and the
//! literals it announces, bounded in size) and reading its values (atoms,
//! strings, literals, `NIL`, parenthesised lists).

use std::fmt;

/// The longest response line Mailwright reads (literals aside): a `SEARCH`
/// of a large mailbox is long, but not longer than this.
pub const MAX_LINE: usize = 8 * 1024 * 1024;
/// The largest literal (a whole message) Mailwright reads.
pub const MAX_LITERAL: usize = 50 * 1024 * 1024;

/// A value in a response.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom or a number, as written (`\Drafts`, `42`, `BODY[]`).
    Atom(String),
    /// A quoted string or a literal.
    Bytes(Vec<u8>),
    Nil,
    List(Vec<Value>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Atom(atom) => write!(f, "{atom}"),
            // Message bodies are mail: their length, not their text.
            Value::Bytes(bytes) if bytes.len() > 80 => write!(f, "<{} bytes>", bytes.len()),
            Value::Bytes(bytes) => write!(f, "{:?}", String::from_utf8_lossy(bytes)),
            Value::Nil => f.write_str("NIL"),
            Value::List(items) => f.debug_list().entries(items).finish(),
        }
    }
}

impl Value {
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Value::Atom(atom) => Some(atom),
            _ => None,
        }
    }

    /// An atom, string or literal as text (`NIL` and lists: `None`).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Atom(atom) => Some(atom.clone()),
            Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Value::Nil | Value::List(_) => None,
        }
    }

    pub fn as_number(&self) -> Option<u32> {
        self.as_atom().and_then(|atom| atom.parse().ok())
    }
}

/// The status of a tagged or untagged status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    PreAuth,
}

impl Status {
    fn parse(word: &str) -> Option<Status> {
        match word.to_ascii_uppercase().as_str() {
            "OK" => Some(Status::Ok),
            "NO" => Some(Status::No),
            "BAD" => Some(Status::Bad),
            "BYE" => Some(Status::Bye),
            "PREAUTH" => Some(Status::PreAuth),
            _ => None,
        }
    }
}

/// A status response's `[CODE args]` and human text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText {
    pub status: Status,
    /// The response code's words (`["UIDVALIDITY", "7"]`, `["APPENDUID",
    /// "7", "12"]`), upper-cased first word.
    pub code: Vec<String>,
    pub text: String,
}

impl StatusText {
    /// The response code's name (`AUTHENTICATIONFAILED`), if any.
    pub fn code_name(&self) -> Option<&str> {
        self.code.first().map(String::as_str)
    }
}

/// One response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `+ ...`: the server waits for more of the command.
    Continue(String),
    /// `* OK/NO/BAD/BYE/PREAUTH ...`.
    UntaggedStatus(StatusText),
    /// `* 12 EXISTS`, `* 3 FETCH (...)`: a number, a kind and the values.
    Numbered {
        number: u32,
        kind: String,
        values: Vec<Value>,
    },
    /// `* CAPABILITY ...`, `* LIST ...`, `* SEARCH ...`: the kind
    /// (upper-cased) and the values.
    Data { kind: String, values: Vec<Value> },
    /// The end of a command.
    Tagged { tag: String, status: StatusText },
}

/// What could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a response's line ends, if `buffer` holds all of it; literals
/// (`{n}` at a line's end, then n bytes) are part of the response. An
/// announced literal over [`MAX_LITERAL`] or a line over [`MAX_LINE`] is
/// an error: the server is not one to read on.
pub fn complete_length(buffer: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut position = 0;
    loop {
        let Some(newline) = buffer[position..].iter().position(|&b| b == b'\n') else {
            if buffer.len() - position > MAX_LINE {
                return Err(ParseError("a response line is too long".into()));
            }
            return Ok(None);
        };
        let line_end = position + newline + 1;
        if newline > MAX_LINE {
            return Err(ParseError("a response line is too long".into()));
        }
        match literal_length(&buffer[position..line_end]) {
            None => return Ok(Some(line_end)),
            Some(length) => {
                if length > MAX_LITERAL {
                    return Err(ParseError(format!(
                        "the server announced a literal of {length} bytes"
                    )));
                }
                let after = line_end + length;
                if buffer.len() < after {
                    return Ok(None);
                }
                position = after;
            }
        }
    }
}

/// The length of the literal a line ends with (`{12}\r\n`, `{12+}\r\n`).
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let line = line.strip_suffix(b"+").unwrap_or(line);
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // A length too large for usize is as refused as any over the limit.
    Some(
        std::str::from_utf8(digits)
            .ok()?
            .parse()
            .unwrap_or(usize::MAX),
    )
}

/// Read one whole response (as [`complete_length`] delimits it).
pub fn parse_response(bytes: &[u8]) -> Result<Response, ParseError> {
    let mut reader = Reader { bytes, position: 0 };
    if bytes.starts_with(b"+") {
        reader.position = 1;
        reader.skip_spaces();
        return Ok(Response::Continue(reader.rest_of_line()));
    }
    if bytes.starts_with(b"* ") {
        reader.position = 2;
        let first = reader.atom()?;
        if let Ok(number) = first.parse::<u32>() {
            reader.skip_spaces();
            let kind = reader.atom()?.to_ascii_uppercase();
            let values = reader.values_to_end()?;
            return Ok(Response::Numbered {
                number,
                kind,
                values,
            });
        }
        if let Some(status) = Status::parse(&first) {
            return Ok(Response::UntaggedStatus(reader.status_text(status)?));
        }
        let kind = first.to_ascii_uppercase();
        let values = reader.values_to_end()?;
        return Ok(Response::Data { kind, values });
    }
    let tag = reader.atom()?;
    reader.skip_spaces();
    let word = reader.atom()?;
    // The server's words are not repeated: they could be anything.
    let status =
        Status::parse(&word).ok_or_else(|| ParseError("a response that is not IMAP".into()))?;
    Ok(Response::Tagged {
        tag,
        status: reader.status_text(status)?,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.position += 1;
        }
    }

    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'\r') | Some(b'\n'))
    }

    fn rest_of_line(&mut self) -> String {
        let start = self.position;
        while !self.at_line_end() {
            self.position += 1;
        }
        String::from_utf8_lossy(&self.bytes[start..self.position]).into_owned()
    }

    /// An atom: up to a space, a parenthesis or the line's end; a `[...]`
    /// section (`BODY[HEADER.FIELDS (A B)]`) is part of it.
    fn atom(&mut self) -> Result<String, ParseError> {
        let start = self.position;
        let mut depth = 0usize;
        while let Some(byte) = self.peek() {
            match byte {
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b' ' | b'(' | b')' if depth == 0 => break,
                b'\r' | b'\n' => break,
                _ => {}
            }
            self.position += 1;
        }
        if self.position == start {
            return Err(ParseError("an atom was expected".into()));
        }
        Ok(String::from_utf8_lossy(&self.bytes[start..self.position]).into_owned())
    }

    fn status_text(&mut self, status: Status) -> Result<StatusText, ParseError> {
        self.skip_spaces();
        let mut code = Vec::new();
        if self.peek() == Some(b'[') {
            self.position += 1;
            let start = self.position;
            while let Some(byte) = self.peek() {
                if byte == b']' || byte == b'\r' || byte == b'\n' {
                    break;
                }
                self.position += 1;
            }
            let inside = String::from_utf8_lossy(&self.bytes[start..self.position]).into_owned();
            if self.peek() == Some(b']') {
                self.position += 1;
            }
            code = inside.split_whitespace().map(str::to_owned).collect();
            if let Some(first) = code.first_mut() {
                *first = first.to_ascii_uppercase();
            }
            self.skip_spaces();
        }
        Ok(StatusText {
            status,
            code,
            text: self.rest_of_line(),
        })
    }

    fn values_to_end(&mut self) -> Result<Vec<Value>, ParseError> {
        let mut values = Vec::new();
        loop {
            self.skip_spaces();
            if self.at_line_end() {
                return Ok(values);
            }
            values.push(self.value()?);
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'(') => {
                self.position += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(b')') => {
                            self.position += 1;
                            return Ok(Value::List(items));
                        }
                        None | Some(b'\r') | Some(b'\n') => {
                            return Err(ParseError("a list is not closed".into()));
                        }
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(b'"') => {
                self.position += 1;
                let mut text = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.position += 1;
                            return Ok(Value::Bytes(text));
                        }
                        Some(b'\\') => {
                            self.position += 1;
                            if let Some(byte) = self.peek() {
                                text.push(byte);
                                self.position += 1;
                            }
                        }
                        None | Some(b'\r') | Some(b'\n') => {
                            return Err(ParseError("a quoted string is not closed".into()));
                        }
                        Some(byte) => {
                            text.push(byte);
                            self.position += 1;
                        }
                    }
                }
            }
            Some(b'{') => {
                let close = self.bytes[self.position..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or_else(|| ParseError("a literal's length is not closed".into()))?;
                let digits = &self.bytes[self.position + 1..self.position + close];
                let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                let length: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| ParseError("a literal's length is not a number".into()))?;
                self.position += close + 1;
                if self.bytes[self.position..].starts_with(b"\r\n") {
                    self.position += 2;
                } else if self.peek() == Some(b'\n') {
                    self.position += 1;
                }
                let end = self.position + length;
                if end > self.bytes.len() {
                    return Err(ParseError("a literal is cut short".into()));
                }
                let bytes = self.bytes[self.position..end].to_vec();
                self.position = end;
                Ok(Value::Bytes(bytes))
            }
            _ => {
                let atom = self.atom()?;
                if atom.eq_ignore_ascii_case("NIL") {
                    Ok(Value::Nil)
                } else {
                    Ok(Value::Atom(atom))
                }
            }
        }
    }
}

/// `text` as an IMAP string argument: quoted when it can be, else `None`
/// (the caller sends a literal).
pub fn quoted(text: &str) -> Option<String> {
    if text
        .bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || !b.is_ascii())
    {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        if character == '"' || character == '\\' {
            out.push('\\');
        }
        out.push(character);
    }
    out.push('"');
    Some(out)
}

/// A FETCH response's items as `(NAME, value)` pairs (`UID`, `FLAGS`,
/// `BODY[]`, `INTERNALDATE`), names upper-cased.
pub fn fetch_items(values: &[Value]) -> Vec<(String, Value)> {
    let Some(Value::List(items)) = values.first() else {
        return Vec::new();
    };
    items
        .chunks(2)
        .filter_map(|pair| match pair {
            [Value::Atom(name), value] => Some((name.to_ascii_uppercase(), value.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_with_literals_are_delimited() {
        let bytes = b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello)\r\nA1 OK done\r\n";
        let first = complete_length(bytes).unwrap().unwrap();
        assert_eq!(
            &bytes[..first],
            b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello)\r\n"
        );
        assert_eq!(complete_length(&bytes[..20]).unwrap(), None);
        assert_eq!(complete_length(&bytes[..32]).unwrap(), None);
        let Response::Numbered {
            number,
            kind,
            values,
        } = parse_response(&bytes[..first]).unwrap()
        else {
            panic!("a numbered response");
        };
        assert_eq!((number, kind.as_str()), (1, "FETCH"));
        let items = fetch_items(&values);
        assert_eq!(items[0], ("UID".into(), Value::Atom("7".into())));
        assert_eq!(items[1], ("BODY[]".into(), Value::Bytes(b"hello".to_vec())));
        assert!(complete_length(b"* 1 FETCH (BODY[] {999999999999}\r\n").is_err());
    }

    #[test]
    fn status_lists_and_strings() {
        assert_eq!(
            parse_response(b"* OK [UIDVALIDITY 1700] UIDs valid\r\n").unwrap(),
            Response::UntaggedStatus(StatusText {
                status: Status::Ok,
                code: vec!["UIDVALIDITY".into(), "1700".into()],
                text: "UIDs valid".into(),
            })
        );
        let Response::Data { kind, values } =
            parse_response(b"* LIST (\\HasNoChildren \\Drafts) \"/\" \"My \\\"Drafts\\\"\"\r\n")
                .unwrap()
        else {
            panic!("data");
        };
        assert_eq!(kind, "LIST");
        assert_eq!(
            values,
            vec![
                Value::List(vec![
                    Value::Atom("\\HasNoChildren".into()),
                    Value::Atom("\\Drafts".into())
                ]),
                Value::Bytes(b"/".to_vec()),
                Value::Bytes(b"My \"Drafts\"".to_vec()),
            ]
        );
        let Response::Tagged { tag, status } =
            parse_response(b"a3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n").unwrap()
        else {
            panic!("tagged");
        };
        assert_eq!(tag, "a3");
        assert_eq!(status.code_name(), Some("AUTHENTICATIONFAILED"));
        assert_eq!(
            parse_response(b"* LIST (\\Noselect) NIL \"\"\r\n").unwrap(),
            Response::Data {
                kind: "LIST".into(),
                values: vec![
                    Value::List(vec![Value::Atom("\\Noselect".into())]),
                    Value::Nil,
                    Value::Bytes(Vec::new())
                ]
            }
        );
        assert_eq!(
            parse_response(b"+ idling\r\n").unwrap(),
            Response::Continue("idling".into())
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\c").as_deref(), Some("\"a\\\"b\\\\c\""));
        assert_eq!(quoted("line\r\nbreak"), None);
        assert_eq!(quoted("pässword"), None);
    }
}
