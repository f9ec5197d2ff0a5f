//! A minimal keep-alive HTTP/1.1 client for the issue scenario: it sends requests built once, and reads
//! only the status and the body's length of each answer (the daemon answers with `content-length`). The
//! load generator shares the two cores with the daemon, so every microsecond it spends per request is one
//! the daemon does not get: vuoro_client::Http, written for tests, formats each request anew and reads
//! the answer line by line into strings (15 to 19 µs of CPU per ticket, docs/benchmarks.md).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawHttp {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// An answer: its status and body.
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

/// A POST with a JSON body and a bearer token, as bytes to send as they are.
pub fn post_json(addr: SocketAddr, path: &str, token: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl RawHttp {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<RawHttp> {
        if !addr.ip().is_loopback() {
            bail!("the benchmark talks to loopback addresses only");
        }
        let stream = TcpStream::connect(addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        Ok(RawHttp {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and reads one whole answer.
    pub async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<Answer<'_>> {
        self.stream.write_all(request).await.context("write")?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 * 1024 {
                bail!("answer head too long");
            }
            self.read_more().await?;
        };
        let head = &self.buf[..head_end];
        let status = head
            .get(9..12)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse().ok())
            .filter(|_| head.starts_with(b"HTTP/1.1 "))
            .with_context(|| format!("bad status line in {:?}", String::from_utf8_lossy(head)))?;
        let len = content_length(head).context("an answer without content-length")?;
        while self.buf.len() < head_end + len {
            self.read_more().await?;
        }
        if self.buf.len() > head_end + len {
            bail!("more bytes than the answer holds (nothing was pipelined)");
        }
        Ok(Answer {
            status,
            body: &self.buf[head_end..],
        })
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        let n = self.stream.read_buf(&mut self.buf).await.context("read")?;
        if n == 0 {
            bail!("connection closed");
        }
        Ok(())
    }
}

/// The value of the `content-length` header, whatever its case.
fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        if !name.eq_ignore_ascii_case(b"content-length") {
            return None;
        }
        std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_length_in_any_case() {
        let head =
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nCONTENT-LENGTH: 17\r\n\r\n";
        assert_eq!(content_length(head), Some(17));
        assert_eq!(content_length(b"HTTP/1.1 200 OK\r\n\r\n"), None);
    }
}
