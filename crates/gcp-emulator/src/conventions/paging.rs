//! List pagination (AIP-158): `pageSize=0` means the server default, sizes are capped, and
//! `nextPageToken` is opaque (it encodes the last name returned, so deletions between pages are
//! harmless); a token the server did not issue is a 400.

use super::error::ApiError;
use super::wire::Query;

/// Page size policy of one list method.
#[derive(Debug, Clone, Copy)]
pub struct PagePolicy {
    pub default_size: usize,
    pub max_size: usize,
    /// Query parameter carrying the size (`pageSize`, or Storage's `maxResults`).
    pub size_param: &'static str,
    /// Distinguishes tokens of different collections.
    pub token_kind: &'static str,
}

/// One page of a sorted collection.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// Pages over `items`, which must be sorted by `key` (ascending, unique).
pub fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
    query: &Query,
    policy: PagePolicy,
) -> Result<Page<T>, ApiError> {
    let size = match query.non_empty(policy.size_param) {
        None => policy.default_size,
        Some(raw) => match raw.parse::<i64>() {
            Ok(0) => policy.default_size,
            Ok(n) if n < 0 => {
                return Err(ApiError::invalid_argument(format!(
                    "Invalid {}: must not be negative.",
                    policy.size_param
                )));
            }
            Ok(n) => usize::try_from(n)
                .unwrap_or(policy.max_size)
                .min(policy.max_size),
            Err(_) => {
                let field = super::wire::snake_case(policy.size_param);
                return Err(ApiError::bad_field(
                    &field,
                    format!("Invalid value at '{field}' (TYPE_INT32), \"{raw}\""),
                ));
            }
        },
    };
    let after = match query.non_empty("pageToken") {
        None => None,
        Some(token) => Some(decode_token(token, policy.token_kind)?),
    };
    let mut remaining: Vec<T> = match &after {
        Some(after) => items
            .into_iter()
            .filter(|item| key(item) > after.as_str())
            .collect(),
        None => items,
    };
    let next_page_token = if remaining.len() > size {
        remaining.truncate(size);
        remaining
            .last()
            .map(|last| encode_token(policy.token_kind, key(last)))
    } else {
        None
    };
    Ok(Page {
        items: remaining,
        next_page_token,
    })
}

fn encode_token(kind: &str, last_key: &str) -> String {
    hex::encode(format!("{kind}\n{last_key}"))
}

fn decode_token(token: &str, kind: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_argument("The page token is invalid.");
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match text.split_once('\n') {
        Some((token_kind, last_key)) if token_kind == kind => Ok(last_key.to_string()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PagePolicy = PagePolicy {
        default_size: 3,
        max_size: 5,
        size_param: "pageSize",
        token_kind: "t",
    };

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("item-{i:02}")).collect()
    }

    #[test]
    fn page_size_zero_means_default_and_tokens_continue() {
        let first = paginate(
            names(7),
            |s| s.as_str(),
            &Query::parse(Some("pageSize=0&pageToken=")),
            POLICY,
        )
        .expect("page");
        assert_eq!(first.items.len(), 3);
        let token = first.next_page_token.expect("more");
        let second = paginate(
            names(7),
            |s| s.as_str(),
            &Query::parse(Some(&format!("pageSize=100&pageToken={token}"))),
            POLICY,
        )
        .expect("page");
        assert_eq!(
            second.items,
            vec!["item-03", "item-04", "item-05", "item-06"]
        );
        assert!(second.next_page_token.is_none());
    }

    #[test]
    fn foreign_tokens_are_rejected() {
        let error = paginate(
            names(2),
            |s| s.as_str(),
            &Query::parse(Some("pageToken=zzz")),
            POLICY,
        )
        .expect_err("bad token");
        assert_eq!(error.code.http_status(), 400);
    }
}
