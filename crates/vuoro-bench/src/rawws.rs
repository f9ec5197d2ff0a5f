//! A minimal WebSocket client for many thousands of subscribers: the RFC 6455 handshake on `/api/v1/ws`,
//! masked text frames out, unfragmented frames in, answering pings. It keeps one small growable buffer
//! per socket and parses nothing it does not need, so that the load generator, which shares the two
//! cores with the daemon, costs as little as possible per delivered message. (vuoro_client::Ws, built on
//! tungstenite, allocates a 128 KiB read buffer per socket: 6 GB for 50,000 sockets.)

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

const OP_TEXT: u8 = 1;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;

impl RawWs {
    /// Connects from `local` (one of 127.0.0.x, to spread ephemeral ports) or any loopback address.
    pub async fn connect(addr: SocketAddr, local: Option<IpAddr>) -> anyhow::Result<RawWs> {
        if !addr.ip().is_loopback() || local.is_some_and(|l| !l.is_loopback()) {
            bail!("the benchmark talks to loopback addresses only");
        }
        let sock = TcpSocket::new_v4()?;
        // Closed with a reset, not through TIME_WAIT: 10,000 sockets a run in TIME_WAIT for a minute
        // made the next run's connections fail to find a free port. (Deprecated because a non-zero
        // linger blocks the thread on drop; zero does not.)
        #[allow(deprecated)]
        sock.set_linger(Some(std::time::Duration::ZERO))?;
        if let Some(ip) = local {
            sock.bind(SocketAddr::new(ip, 0))?;
        }
        let mut stream = sock.connect(addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        let req = format!(
            "GET /api/v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut buf = vec![0; 2048];
        let mut n = 0;
        let head_end = loop {
            if n == buf.len() {
                bail!("handshake answer too long");
            }
            let r = stream.read(&mut buf[n..]).await?;
            if r == 0 {
                bail!("closed during the handshake");
            }
            n += r;
            if let Some(i) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            bail!(
                "handshake refused: {}",
                String::from_utf8_lossy(&buf[..head_end.min(80)])
            );
        }
        Ok(RawWs {
            stream,
            buf,
            start: head_end,
            end: n,
        })
    }

    /// Sends one masked text frame.
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        let p = text.as_bytes();
        let mut f = Vec::with_capacity(p.len() + 14);
        f.push(0x80 | OP_TEXT);
        if p.len() < 126 {
            f.push(0x80 | p.len() as u8);
        } else if p.len() <= 0xffff {
            f.push(0x80 | 126);
            f.extend_from_slice(&(p.len() as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(p.len() as u64).to_be_bytes());
        }
        let mask = [0x5a, 0x17, 0xc3, 0x8e];
        f.extend_from_slice(&mask);
        f.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&f).await?;
        Ok(())
    }

    pub async fn subscribe(&mut self, topic: &str) -> anyhow::Result<()> {
        self.send_text(&format!(r#"{{"type":"subscribe","topic":"{topic}"}}"#))
            .await
    }

    /// The next text message (answering pings on the way). Err when the socket closes.
    pub async fn next_text(&mut self) -> anyhow::Result<&[u8]> {
        loop {
            if let Some((op, hdr, len)) = self.frame_at_start()? {
                let from = self.start + hdr;
                self.start = from + len;
                match op {
                    OP_TEXT => return Ok(&self.buf[from..from + len]),
                    OP_CLOSE => bail!("closed by the server"),
                    OP_PING => {
                        let payload = self.buf[from..from + len].to_vec();
                        let mut f = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                        f.extend_from_slice(&payload);
                        self.stream.write_all(&f).await?;
                    }
                    _ => {}
                }
                continue;
            }
            // Need more bytes: move what is left to the front, grow when a frame is larger.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
            let r = self.stream.read(&mut self.buf[self.end..]).await?;
            if r == 0 {
                bail!("socket closed");
            }
            self.end += r;
        }
    }

    /// (opcode, header length, payload length) of a complete frame at the start of the buffer.
    fn frame_at_start(&self) -> anyhow::Result<Option<(u8, usize, usize)>> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x80 == 0 {
            bail!("fragmented frames are not expected from the daemon");
        }
        if b[1] & 0x80 != 0 {
            bail!("a server frame must not be masked");
        }
        let (hdr, len) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
            127 if b.len() >= 10 => (
                10,
                u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize,
            ),
            126 | 127 => return Ok(None),
            n => (2, n as usize),
        };
        Ok((b.len() >= hdr + len).then_some((b[0] & 0x0f, hdr, len)))
    }

    /// Lets go of a large buffer after a snapshot, keeping an idle client small.
    pub fn shrink(&mut self) {
        if self.start == self.end && self.buf.len() > 4096 {
            self.buf = vec![0; 1024];
            self.start = 0;
            self.end = 0;
        }
    }
}

/// The value of `"key":"..."` or `"key":123` in a JSON text, without parsing it all.
pub fn json_field<'a>(text: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let pat = format!("\"{key}\":");
    let i = memchr::memmem::find(text, pat.as_bytes())? + pat.len();
    let rest = &text[i..];
    if rest.first() == Some(&b'"') {
        let end = rest[1..].iter().position(|&c| c == b'"')?;
        Some(&rest[1..1 + end])
    } else {
        let end = rest
            .iter()
            .position(|&c| c == b',' || c == b'}')
            .unwrap_or(rest.len());
        Some(&rest[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::json_field;

    #[test]
    fn finds_fields() {
        let t = br#"{"type":"event","seq":17,"event":{"number":"A0042","kind":"ticket_called"}}"#;
        assert_eq!(json_field(t, "number"), Some(&b"A0042"[..]));
        assert_eq!(json_field(t, "seq"), Some(&b"17"[..]));
        assert_eq!(json_field(t, "kind"), Some(&b"ticket_called"[..]));
        assert_eq!(json_field(t, "nope"), None);
    }
}
