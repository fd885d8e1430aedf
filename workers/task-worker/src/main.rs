//! task-worker: a tiny HTTP/1.1 server on `0.0.0.0:$PORT` (Cloud Run's container contract) that
//! accepts Cloud Tasks deliveries on `POST /tasks/webhook` and answers health checks.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Largest task body accepted (Cloud Tasks allows up to 1 MiB per task).
const MAX_BODY_BYTES: usize = 1 << 20;

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_string());
    let listener = match TcpListener::bind(("0.0.0.0", port.parse::<u16>().unwrap_or(8080))) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("task-worker: cannot listen on port {port}: {error}");
            std::process::exit(1);
        }
    };
    eprintln!("task-worker: listening on port {port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(error) = serve(stream) {
                eprintln!("task-worker: connection error: {error}");
            }
        });
    }
}

/// One request as far as the worker cares.
#[derive(Debug, PartialEq)]
struct Request {
    method: String,
    path: String,
    task_name: Option<String>,
    body: Vec<u8>,
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let response = match read_request(&mut reader)? {
        Some(request) => respond(&request),
        None => return Ok(()),
    };
    let mut stream = stream;
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut content_length = 0usize;
    let mut task_name = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            match name.as_str() {
                "content-length" => content_length = value.parse().unwrap_or(0),
                "x-cloudtasks-taskname" => task_name = Some(value.to_string()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; content_length.min(MAX_BODY_BYTES)];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        path,
        task_name,
        body,
    }))
}

fn respond(request: &Request) -> String {
    let (status, body) = match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/tasks/webhook") => {
            eprintln!(
                "task-worker: task {} ({} bytes)",
                request.task_name.as_deref().unwrap_or("-"),
                request.body.len()
            );
            ("200 OK", format!("{{\"accepted\":{}}}", request.body.len()))
        }
        ("GET", "/healthz") | ("GET", "/") => ("200 OK", "{\"status\":\"ok\"}".to_string()),
        (_, "/tasks/webhook") => ("405 Method Not Allowed", "{}".to_string()),
        _ => ("404 Not Found", "{}".to_string()),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_delivery_is_accepted_with_its_size() {
        let raw = b"POST /tasks/webhook HTTP/1.1\r\nContent-Length: 5\r\nX-CloudTasks-TaskName: t1\r\n\r\nhello";
        let request = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(request.task_name.as_deref(), Some("t1"));
        let response = respond(&request);
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.ends_with("{\"accepted\":5}"), "{response}");
    }

    #[test]
    fn other_paths_are_404_and_wrong_methods_405() {
        let get = read_request(&mut &b"GET /tasks/webhook HTTP/1.1\r\n\r\n"[..])
            .unwrap()
            .unwrap();
        assert!(respond(&get).starts_with("HTTP/1.1 405"));
        let other = read_request(&mut &b"GET /nope HTTP/1.1\r\n\r\n"[..])
            .unwrap()
            .unwrap();
        assert!(respond(&other).starts_with("HTTP/1.1 404"));
    }
}
