//! The head of an HTTP/1.1 request, for the hand-written test servers
//! (`gated`, `token`): request line and headers, up to the blank line.

use std::io::BufRead;

#[derive(Clone)]
pub struct RequestHead {
    /// The request line without its line ending: `GET /v2/ HTTP/1.1`.
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn read(reader: &mut impl BufRead) -> std::io::Result<Self> {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        Ok(RequestHead {
            line: line.trim_end().to_string(),
            headers,
        })
    }

    pub fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or("")
    }

    /// The request target, query included.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }

    /// Every value of the headers called `name` (any case), in order.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
