//! SPDY/3 header-block compression: zlib streams primed with the fixed SPDY/3
//! dictionary, one context per direction for the whole session.
//! Decompression is capped (a header block may not inflate past
//! `MAX_HEADER_BLOCK`), so a decompression bomb is an error, not an OOM.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Largest decompressed header block accepted from a peer.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// Length-prefixed words at the start of the SPDY/3 dictionary (draft 3, 2.6.10.1).
const DICT_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The raw tail of the SPDY/3 dictionary.
const DICT_TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// The SPDY/3 header compression dictionary (1423 bytes).
pub fn dictionary() -> &'static [u8] {
    static DICT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICT.get_or_init(|| {
        let mut d = Vec::with_capacity(1423);
        for w in DICT_WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(DICT_TAIL.as_bytes());
        d
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZlibError {
    #[error("header block inflates past {MAX_HEADER_BLOCK} bytes")]
    TooLarge,
    #[error("corrupt header block: {0}")]
    Corrupt(String),
}

/// Compression context for headers we send.
pub struct HeaderCompressor {
    z: Compress,
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    pub fn new() -> Self {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(dictionary())
            .expect("zlib-rs backend supports dictionaries");
        HeaderCompressor { z }
    }

    /// Compress one header block, sync-flushed so the peer can inflate it alone.
    pub fn compress(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before_in = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate of an in-memory buffer cannot fail");
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            // Done once all input is consumed and the flush left spare room.
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

/// Decompression context for headers we receive.
pub struct HeaderDecompressor {
    z: Decompress,
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        HeaderDecompressor {
            z: Decompress::new(true),
        }
    }

    /// Inflate one header block; at most `MAX_HEADER_BLOCK` bytes of output.
    pub fn decompress(&mut self, block: &[u8]) -> Result<Vec<u8>, ZlibError> {
        let mut out: Vec<u8> = Vec::with_capacity(block.len().min(MAX_HEADER_BLOCK) * 2 + 64);
        let mut input = block;
        loop {
            if out.len() >= MAX_HEADER_BLOCK {
                return Err(ZlibError::TooLarge);
            }
            if out.capacity() == out.len() {
                out.reserve((out.len()).clamp(1024, MAX_HEADER_BLOCK - out.len() + 1));
            }
            let before_in = self.z.total_in();
            let before_out = out.len();
            match self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(dictionary())
                        .map_err(|e| ZlibError::Corrupt(e.to_string()))?;
                }
                Err(e) => return Err(ZlibError::Corrupt(e.to_string())),
            }
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            if used == 0 && out.len() == before_out && out.len() < out.capacity() {
                // No progress with room to spare: the block is truncated.
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_has_the_spec_length() {
        assert_eq!(dictionary().len(), 1423);
        assert_eq!(&dictionary()[..11], b"\0\0\0\x07options");
        assert!(dictionary().ends_with(b",enq=0."));
    }

    #[test]
    fn header_blocks_round_trip_across_one_context() {
        let mut c = HeaderCompressor::new();
        let mut d = HeaderDecompressor::new();
        for i in 0..50 {
            let block: Vec<u8> = format!("streamtype stdout port {i} requestid {}", i * 7)
                .repeat(i % 5 + 1)
                .into_bytes();
            let z = c.compress(&block);
            assert_eq!(d.decompress(&z).unwrap(), block);
        }
    }

    #[test]
    fn decompression_bomb_is_rejected() {
        let mut c = HeaderCompressor::new();
        let bomb = vec![0u8; 4 * MAX_HEADER_BLOCK];
        let z = c.compress(&bomb);
        assert!(z.len() < 16 * 1024, "compresses well: {}", z.len());
        assert_eq!(
            HeaderDecompressor::new().decompress(&z),
            Err(ZlibError::TooLarge)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = HeaderDecompressor::new();
        assert!(d
            .decompress(b"\x78\xbb\xff\xff\xff\xff\x00\x01garbage")
            .is_err());
    }
}
