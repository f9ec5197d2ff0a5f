//! A deliberately small client for Vuoro's API, used by the end-to-end tests and the benchmark: one
//! keep-alive HTTP/1.1 connection per `Http`, and WebSocket helpers. It talks to loopback addresses only.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The error code of a JSON error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn assert_loopback(addr: SocketAddr) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        bail!("vuoro-client talks to loopback addresses only, not {addr}");
    }
    Ok(())
}

/// One keep-alive HTTP/1.1 connection.
pub struct Http {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    /// Sent as `Authorization: Bearer` when set.
    pub token: Option<String>,
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            stream: None,
            token: None,
        }
    }

    pub fn with_token(addr: SocketAddr, token: &str) -> Http {
        Http {
            addr,
            stream: None,
            token: Some(token.to_string()),
        }
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Response> {
        self.request("GET", path, None, &[]).await
    }

    pub async fn post(&mut self, path: &str, body: &Value) -> anyhow::Result<Response> {
        self.request("POST", path, Some(body.to_string().as_bytes()), &[])
            .await
    }

    pub async fn delete(&mut self, path: &str) -> anyhow::Result<Response> {
        self.request("DELETE", path, None, &[]).await
    }

    /// Any request; `body` is sent as JSON (raw bytes, so tests can send malformed JSON).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        // One retry on a connection the server closed while idle.
        for attempt in 0..2 {
            if self.stream.is_none() {
                assert_loopback(self.addr)?;
                let s = TcpStream::connect(self.addr)
                    .await
                    .with_context(|| format!("connect {}", self.addr))?;
                s.set_nodelay(true)?;
                self.stream = Some(BufReader::new(s));
            }
            match self.exchange(method, path, body, headers).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 => {
                    self.stream = None;
                    if !format!("{e:#}").contains("closed") {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!()
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        let s = self.stream.as_mut().expect("connected");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n",
            self.addr
        );
        if let Some(t) = &self.token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or(b"");
        if !body.is_empty() || method == "POST" {
            // JSON unless the caller names another type.
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                req.push_str("Content-Type: application/json\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut buf = req.into_bytes();
        buf.extend_from_slice(body);
        s.get_mut().write_all(&buf).await.context("write")?;
        let mut line = String::new();
        if s.read_line(&mut line).await.context("read status")? == 0 {
            bail!("connection closed");
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            s.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.parse().unwrap_or(0);
                }
                if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
                headers.push((k, v));
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                s.read_line(&mut line).await?;
                let n = usize::from_str_radix(line.trim(), 16).context("chunk size")?;
                let mut chunk = vec![0; n + 2];
                s.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(len, 0);
            s.read_exact(&mut body).await?;
        }
        if headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"))
        {
            self.stream = None;
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Logs in and returns the session token.
pub async fn login(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<String> {
    let mut h = Http::new(addr);
    let r = h
        .post(
            "/api/v1/auth/login",
            &serde_json::json!({"username": user, "password": password}),
        )
        .await?;
    if r.status != 200 {
        bail!(
            "login {user}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok(r.json()["token"].as_str().context("token")?.to_string())
}

/// The demo kiosk's device token (demo config, loopback).
pub async fn demo_device_token(addr: SocketAddr, device: &str) -> anyhow::Result<String> {
    let mut h = Http::new(addr);
    let r = h
        .get(&format!("/api/v1/demo/device-token?device={device}"))
        .await?;
    Ok(r.json()["token"]
        .as_str()
        .with_context(|| format!("no demo token: {}", r.status))?
        .to_string())
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A WebSocket client on /api/v1/ws, optionally authenticated with a bearer token.
pub struct Ws {
    pub stream: WsStream,
}

impl Ws {
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Ws> {
        assert_loopback(addr)?;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{addr}/api/v1/ws").into_client_request()?;
        if let Some(t) = token {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse()?);
        }
        let (stream, _) = tokio_tungstenite::connect_async(req)
            .await
            .context("ws connect")?;
        Ok(Ws { stream })
    }

    /// Like `connect`, with a small fixed receive buffer: a client that reads slowly fills up quickly.
    pub async fn connect_with_recv_buffer(
        addr: SocketAddr,
        token: Option<&str>,
        bytes: u32,
    ) -> anyhow::Result<Ws> {
        assert_loopback(addr)?;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.set_recv_buffer_size(bytes)?;
        let tcp = sock.connect(addr).await?;
        let mut req = format!("ws://{addr}/api/v1/ws").into_client_request()?;
        if let Some(t) = token {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse()?);
        }
        let (stream, _) =
            tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
                .await
                .context("ws handshake")?;
        Ok(Ws { stream })
    }

    pub async fn send(&mut self, v: &Value) -> anyhow::Result<()> {
        self.stream.send(Message::text(v.to_string())).await?;
        Ok(())
    }

    pub async fn subscribe(&mut self, topic: &str, after: Option<u64>) -> anyhow::Result<()> {
        let mut m = serde_json::json!({"type": "subscribe", "topic": topic});
        if let Some(a) = after {
            m["after"] = a.into();
        }
        self.send(&m).await
    }

    /// The next JSON message that is not a heartbeat, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("no message in time")?
                .context("socket closed")??;
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t)?;
                if v["type"] != "heartbeat" {
                    return Ok(v);
                }
            }
        }
    }

    /// Messages until none arrives for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(v) = self.next(quiet).await {
            out.push(v);
        }
        out
    }
}
