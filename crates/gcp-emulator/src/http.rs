//! The HTTP shapes every front shares: a request as received (raw path kept for routing) and a
//! response before hyper sees it, with Google's JSON error body and HTML 404.

use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

use crate::conventions::{ApiError, ErrorStyle};

/// A request as the emulator sees it (raw path kept percent-encoded for routing).
#[derive(Debug)]
pub struct HttpRequest {
    pub method: String,
    pub raw_path: String,
    pub raw_query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A response before it is handed to hyper.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(status: u16, value: &Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Self {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=UTF-8".into(),
            )],
            body,
        }
    }

    pub fn text(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=UTF-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    pub fn error(error: &ApiError, style: ErrorStyle) -> Self {
        Self::json(error.http_status(), &error.to_body(style))
    }

    /// Google's HTML 404 for paths no API serves.
    pub(crate) fn html_not_found(path: &str) -> Self {
        let escaped = path
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let body = format!(
            "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
             <p><b>404.</b> <ins>That\u{2019}s an error.</ins>\n  <p>The requested URL <code>{escaped}</code> was not found on this server.  \
             <ins>That\u{2019}s all we know.</ins>\n"
        );
        Self {
            status: 404,
            headers: vec![("content-type".into(), "text/html; charset=UTF-8".into())],
            body: body.into_bytes(),
        }
    }
}
