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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_give_the_first_byte_and_the_total_when_known() {
        assert_eq!(
            content_range(Some("bytes 0-9/25"), 10).unwrap(),
            (0, Some(25))
        );
        assert_eq!(
            content_range(Some("bytes 10-19/*"), 10).unwrap(),
            (10, None)
        );
        assert_eq!(
            content_range(Some("bytes */25"), 0).unwrap(),
            (25, Some(25))
        );
        assert_eq!(content_range(None, 7).unwrap(), (0, Some(7)));
        assert_eq!(
            content_range(Some("items 0-9/25"), 10)
                .unwrap_err()
                .http_status(),
            400
        );
    }

    #[test]
    fn multipart_bodies_split_into_metadata_and_media() {
        let body = b"--B\r\ncontent-type: application/json\r\n\r\n{\"a\": 1}\r\n--B\r\ncontent-type: text/csv\r\n\r\nx,y\n1,2\r\n--B--";
        let (metadata, media_type, media) =
            split_multipart("multipart/related; boundary=\"B\"", body).unwrap();
        assert_eq!(metadata, serde_json::json!({"a": 1}));
        assert_eq!(media_type.as_deref(), Some("text/csv"));
        assert_eq!(media, b"x,y\n1,2");
    }
}
