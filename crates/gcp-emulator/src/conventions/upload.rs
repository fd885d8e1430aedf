//! Google's media upload conventions: `multipart/related` bodies (JSON metadata, then the media)
//! and the `Content-Range` of resumable upload chunks.

use serde_json::Value;

use super::ApiError;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_argument(message).with_storage_reason("invalid")
}

/// Splits a `multipart/related` upload into its JSON metadata and media parts.
pub fn split_multipart(
    content_type: &str,
    body: &[u8],
) -> Result<(Value, Option<String>, Vec<u8>), ApiError> {
    let boundary = content_type
        .split(';')
        .filter_map(|part| part.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| invalid("Multipart upload without a boundary."))?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, &delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let end = find(rest, &delimiter).unwrap_or(rest.len());
        parts.push(&rest[..end]);
        rest = &rest[end..];
    }
    let parse_part = |part: &[u8]| -> (Option<String>, Vec<u8>) {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| find(part, b"\n\n").map(|i| (i, 2)));
        let (head, content) = match split {
            Some((index, gap)) => (&part[..index], &part[index + gap..]),
            None => (&part[..0], part),
        };
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let content_type = String::from_utf8_lossy(head).lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        });
        (content_type, content.to_vec())
    };
    let [metadata_part, media_part] = parts.as_slice() else {
        return Err(invalid(
            "Multipart upload must have exactly a metadata part and a media part.",
        ));
    };
    let (_, metadata_bytes) = parse_part(metadata_part);
    let metadata: Value = serde_json::from_slice(&metadata_bytes)
        .map_err(|e| invalid(format!("Invalid multipart metadata: {e}")))?;
    let (media_type, media) = parse_part(media_part);
    Ok((metadata, media_type, media))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A resumable chunk's `Content-Range`: `bytes FIRST-LAST/TOTAL`, `bytes FIRST-LAST/*` (total
/// not known yet) or `bytes */TOTAL` (no bytes, the total declared). Returns (first byte,
/// total).
pub fn content_range(
    header: Option<&str>,
    body_len: usize,
) -> Result<(u64, Option<u64>), ApiError> {
    let Some(header) = header else {
        return Ok((0, Some(body_len as u64)));
    };
    let bad = || invalid(format!("Invalid Content-Range header: {header}"));
    let spec = header.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let total = match total {
        "*" => None,
        n => Some(n.parse::<u64>().map_err(|_| bad())?),
    };
    let first = match range {
        "*" => total.unwrap_or(0),
        range => {
            let (first, _) = range.split_once('-').ok_or_else(bad)?;
            first.parse::<u64>().map_err(|_| bad())?
        }
    };
    Ok((first, total))
}
