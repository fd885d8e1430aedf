//! Value readers the data, money and observability kinds share: references, lists, inline tables.

use super::*;

impl Checker<'_> {
    /// `key = "<kind>.NAME"` naming a declared resource of `kind`.
    pub(super) fn read_reference_at(
        &mut self,
        table: &TableRef,
        key: &str,
        kind: Kind,
        declared: &Declared,
    ) -> Read<ResourceAddr> {
        let Some(value) = table.get(key) else {
            return Read::Absent;
        };
        match reference(self, &table.title, key, value, kind, declared) {
            Some(addr) => Read::Found(addr, value.span()),
            None => Read::Invalid,
        }
    }

    /// `key = ["<kind>.A", "<kind>.B"]`, each naming a declared resource of `kind`.
    pub(super) fn read_reference_list_at(
        &mut self,
        table: &TableRef,
        key: &str,
        kind: Kind,
        declared: &Declared,
    ) -> Read<Vec<ResourceAddr>> {
        let Some(value) = table.get(key) else {
            return Read::Absent;
        };
        let DeValue::Array(items) = value.get_ref() else {
            let help = Some(format!("write {key} = [\"{kind}.NAME\"]"));
            let p = type_problem(key, &table.title, "an array", value.get_ref(), help);
            self.error(value.span(), p.message, p.help);
            return Read::Invalid;
        };
        let mut out = Vec::new();
        let mut valid = true;
        for item in items.iter() {
            match reference(self, &table.title, key, item, kind, declared) {
                Some(addr) if out.contains(&addr) => {
                    valid = false;
                    self.error(
                        item.span(),
                        format!("`{addr}` is listed twice in `{key}` of {}", table.title),
                        Some("remove the duplicate".into()),
                    );
                }
                Some(addr) => out.push(addr),
                None => valid = false,
            }
        }
        if valid {
            Read::Found(out, value.span())
        } else {
            Read::Invalid
        }
    }

    /// `key = ["a", "b"]`.
    pub(super) fn read_plain_string_list(
        &mut self,
        table: &TableRef,
        key: &str,
    ) -> Read<Vec<String>> {
        let title = &table.title;
        self.read(table, key, |value| {
            let DeValue::Array(items) = value else {
                let help = Some(format!("write {key} = [\"...\"]"));
                return Err(type_problem(key, title, "an array of strings", value, help));
            };
            items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(text) => Ok(text.to_string()),
                    other => Err(type_problem(
                        key,
                        title,
                        "an array of strings",
                        other,
                        Some(format!("quote each entry: {key} = [\"...\"]")),
                    )),
                })
                .collect()
        })
    }

    /// `key = [0.5, 0.9, 1]`.
    pub(super) fn read_number_list(&mut self, table: &TableRef, key: &str) -> Read<Vec<f64>> {
        let title = &table.title;
        self.read(table, key, |value| {
            let DeValue::Array(items) = value else {
                return Err(type_problem(key, title, "an array of numbers", value, None));
            };
            items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::Float(f) => f
                        .as_str()
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite())
                        .ok_or_else(|| {
                            Problem::new(format!("`{key}` in {title}: not a finite number"), None)
                        }),
                    DeValue::Integer(_) => match integer_value(item.get_ref()) {
                        Some(Ok(n)) => Ok(n as f64),
                        _ => Err(Problem::new(format!("`{key}` in {title}: too large"), None)),
                    },
                    other => Err(type_problem(key, title, "an array of numbers", other, None)),
                })
                .collect()
        })
    }
}

/// One reference value; records its error and returns `None` when it is not usable.
fn reference(
    checker: &mut Checker,
    title: &str,
    key: &str,
    value: &Spanned<DeValue>,
    kind: Kind,
    declared: &Declared,
) -> Option<ResourceAddr> {
    let names = declared.get(&kind).cloned().unwrap_or_default();
    let listing = if names.is_empty() {
        format!("no {kind}s are declared; add a [{kind}.NAME] table")
    } else {
        format!(
            "declared {kind}s: {}",
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    let DeValue::String(text) = value.get_ref() else {
        let p = type_problem(
            key,
            title,
            &format!("a reference \"{kind}.NAME\""),
            value.get_ref(),
            Some(format!("write {key} = \"{kind}.NAME\"; {listing}")),
        );
        checker.error(value.span(), p.message, p.help);
        return None;
    };
    let addr = match text.parse::<ResourceAddr>() {
        Ok(addr) if addr.kind == kind => addr,
        _ => {
            let help = if names.contains(text.as_ref()) {
                format!("write \"{kind}.{text}\"")
            } else {
                format!("write \"{kind}.NAME\"; {listing}")
            };
            checker.error(
                value.span(),
                format!("`{key}` in {title} must reference a {kind}, found `{text}`"),
                Some(help),
            );
            return None;
        }
    };
    if !names.contains(&addr.name) {
        let help = match closest(&addr.name, names.iter().map(String::as_str)) {
            Some(s) => format!("did you mean \"{kind}.{s}\"? {listing}"),
            None => listing,
        };
        let file = checker.file_name();
        checker.error(
            value.span(),
            format!("no [{kind}.{}] in {file}", addr.name),
            Some(help),
        );
        return None;
    }
    Some(addr)
}
