//! A deliberately small HTTP/1.1 responder for the worker's endpoints: one request per
//! connection, `GET` only, bounded reads.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read before answering 431.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub code: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub(crate) fn text(code: u16, content_type: &'static str, body: String) -> Self {
        Self {
            code,
            content_type,
            body,
        }
    }

    pub(crate) fn json(code: u16, body: &serde_json::Value) -> Self {
        Self::text(code, "application/json", format!("{body}\n"))
    }

    fn not_found(path: &str) -> Self {
        Self::json(
            404,
            &serde_json::json!({ "error": format!("no endpoint at {path}") }),
        )
    }

    fn reason(&self) -> &'static str {
        match self.code {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Unknown",
        }
    }
}

/// Answers requests on `listener` with `route(path)` until the task is dropped.
pub(crate) async fn serve<F>(listener: TcpListener, route: F)
where
    F: Fn(&str) -> Option<Response> + Send + Sync + 'static,
{
    let route = Arc::new(route);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let route = route.clone();
        tokio::spawn(async move {
            let _ = answer(stream, |path| route(path)).await;
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    route: impl Fn(&str) -> Option<Response>,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&chunk[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > MAX_HEAD {
                return Ok(true);
            }
        }
    })
    .await
    .unwrap_or(Ok(false))?;
    if !complete {
        return Ok(());
    }
    let response = if head.len() > MAX_HEAD {
        Response::json(
            431,
            &serde_json::json!({ "error": "request head too large" }),
        )
    } else {
        respond(&head, route)
    };
    let text = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        response.code,
        response.reason(),
        response.content_type,
        response.body.len(),
        response.body
    );
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

fn respond(head: &[u8], route: impl Fn(&str) -> Option<Response>) -> Response {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split(' ');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Response::json(400, &serde_json::json!({ "error": "malformed request" }));
    };
    if method != "GET" {
        return Response::json(405, &serde_json::json!({ "error": "only GET is served" }));
    }
    let path = target.split('?').next().unwrap_or(target);
    route(path).unwrap_or_else(|| Response::not_found(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Option<Response> {
        (path == "/").then(|| Response::text(200, "text/plain", "ok".into()))
    }

    #[tokio::test]
    async fn answers_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, route));
        let fetch = |request: &'static str| async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).await.unwrap();
            text
        };
        let ok = fetch("GET /?probe=1 HTTP/1.1\r\nhost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nok"), "{ok}");
        let missing = fetch("GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        assert!(missing.contains("no endpoint at /nope"), "{missing}");
        let post = fetch("POST / HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        server.abort();
    }
}
