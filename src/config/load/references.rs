//! References between tables (`"service_account.worker"`): each must name a declared table of
//! the expected kind, and together they must form a graph without cycles (reported with their path).

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// The names declared per kind, known before any table is read (from the table headers).
pub(super) type Declared = BTreeMap<Kind, BTreeSet<String>>;

/// One reference edge, for the cycle check: `from` names `to` at `span`.
#[derive(Debug, Clone)]
pub(super) struct Reference {
    pub from: ResourceAddr,
    pub to: ResourceAddr,
    pub span: Span,
}

impl Checker<'_> {
    /// Checks that `value` (written at `span` as `key` in `table`) names a declared `kind` table.
    fn resolve_reference(
        &mut self,
        table: &TableRef,
        key: &str,
        kind: Kind,
        value: &str,
        span: Span,
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
        let expected = format!("\"{kind}.NAME\"");
        let addr = match value.parse::<ResourceAddr>() {
            Ok(addr) if addr.kind == kind => addr,
            Ok(_) | Err(_) if value.split_once('.').is_some_and(|(k, _)| !k.is_empty()) => {
                self.error(
                    span,
                    format!(
                        "`{key}` in {} must be a {kind}, found `{value}`",
                        table.title
                    ),
                    Some(format!("write {key} = {expected}; {listing}")),
                );
                return None;
            }
            _ => {
                let help = if names.contains(value) {
                    format!("write \"{kind}.{value}\"")
                } else {
                    format!("write {expected}; {listing}")
                };
                self.error(
                    span,
                    format!(
                        "`{key}` in {} is not a reference: expected {expected}, found `{value}`",
                        table.title
                    ),
                    Some(help),
                );
                return None;
            }
        };
        if !names.contains(&addr.name) {
            let help = match closest(&addr.name, names.iter().map(String::as_str)) {
                Some(suggestion) => format!("did you mean \"{kind}.{suggestion}\"? {listing}"),
                None => listing,
            };
            let file = self.file_name();
            self.error(span, format!("no [{addr}] in {file}"), Some(help));
            return None;
        }
        self.references.push(Reference {
            from: ResourceAddr::new(table.kind.unwrap_or(Kind::Service), table.name.clone()),
            to: addr.clone(),
            span,
        });
        Some(addr)
    }

    /// `key = "kind.NAME"`: `Some(None)` when absent, `None` when invalid (reported).
    pub(super) fn read_reference(
        &mut self,
        table: &TableRef,
        key: &str,
        kind: Kind,
        declared: &Declared,
    ) -> Option<Option<Field<ResourceAddr>>> {
        let Some(Field { value, span }) = self.read_string(table, key).optional()? else {
            return Some(None);
        };
        let span = span.unwrap_or_else(|| table.span.clone());
        let addr = self.resolve_reference(table, key, kind, &value, span.clone(), declared)?;
        Some(Some(Field {
            value: addr,
            span: Some(span),
        }))
    }

    /// `key = ["kind.A", "kind.B"]`: every entry checked; duplicates are errors.
    pub(super) fn read_reference_list(
        &mut self,
        table: &TableRef,
        key: &str,
        kind: Kind,
        declared: &Declared,
    ) -> Option<Vec<ResourceAddr>> {
        let entries = self.read_string_list(table, key).or_default(Vec::new())?;
        let mut out: Vec<ResourceAddr> = Vec::new();
        let mut valid = true;
        for (value, span) in entries.value {
            match self.resolve_reference(table, key, kind, &value, span.clone(), declared) {
                Some(addr) if out.contains(&addr) => {
                    valid = false;
                    self.error(
                        span,
                        format!("`{key}` in {} lists {addr} twice", table.title),
                        Some("remove the duplicate".into()),
                    );
                }
                Some(addr) => out.push(addr),
                None => valid = false,
            }
        }
        valid.then_some(out)
    }

    /// `key = { ENV = "secret.NAME" }`: env var names to references.
    pub(super) fn read_reference_map(
        &mut self,
        table: &TableRef,
        key: &str,
        kind: Kind,
        declared: &Declared,
    ) -> Option<BTreeMap<String, (ResourceAddr, Span)>> {
        let map = self
            .read_string_map(table, key)
            .or_default(StringMap::empty())?
            .value;
        let mut out = BTreeMap::new();
        let mut valid = map.complete;
        for entry in map.entries {
            if !is_env_name(&entry.key) {
                valid = false;
                self.error(
                    entry.key_span.clone(),
                    format!("`{}` is not a valid environment variable name", entry.key),
                    Some("use letters, digits and `_`, not starting with a digit".into()),
                );
            }
            match self.resolve_reference(
                table,
                key,
                kind,
                &entry.value,
                entry.value_span.clone(),
                declared,
            ) {
                Some(addr) => {
                    out.insert(entry.key, (addr, entry.key_span));
                }
                None => valid = false,
            }
        }
        valid.then_some(out)
    }

    /// `key = ["a", "b"]`: strings with their spans.
    pub(super) fn read_string_list(
        &mut self,
        table: &TableRef,
        key: &str,
    ) -> Read<Vec<(String, Span)>> {
        let Some(value) = table.get(key) else {
            return Read::Absent;
        };
        let DeValue::Array(items) = value.get_ref() else {
            let problem = type_problem(
                key,
                &table.title,
                "an array of strings",
                value.get_ref(),
                Some(format!("write {key} = [\"...\"]")),
            );
            self.error(value.span(), problem.message, problem.help);
            return Read::Invalid;
        };
        let mut out = Vec::new();
        let mut valid = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(text) => out.push((text.to_string(), item.span())),
                other => {
                    valid = false;
                    let problem = type_problem(key, &table.title, "a string", other, None);
                    self.error(
                        item.span(),
                        problem.message,
                        Some(format!("write {key} = [\"...\"]")),
                    );
                }
            }
        }
        if valid {
            Read::Found(out, value.span())
        } else {
            Read::Invalid
        }
    }
}

/// Reports every reference cycle once, with its path (`service.a -> queue.b -> service.a`),
/// at the reference that closes it.
pub(super) fn check_cycles(checker: &mut Checker, references: &[Reference]) {
    let mut edges: BTreeMap<&ResourceAddr, Vec<&Reference>> = BTreeMap::new();
    for r in references {
        edges.entry(&r.from).or_default().push(r);
    }
    let mut done: BTreeSet<&ResourceAddr> = BTreeSet::new();
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    let starts: Vec<&ResourceAddr> = edges.keys().copied().collect();
    for start in starts {
        let mut path: Vec<&Reference> = Vec::new();
        walk(checker, &edges, start, &mut path, &mut done, &mut reported);
    }
}

fn walk<'r>(
    checker: &mut Checker,
    edges: &BTreeMap<&'r ResourceAddr, Vec<&'r Reference>>,
    node: &'r ResourceAddr,
    path: &mut Vec<&'r Reference>,
    done: &mut BTreeSet<&'r ResourceAddr>,
    reported: &mut BTreeSet<Vec<String>>,
) {
    if done.contains(node) {
        return;
    }
    if let Some(at) = path.iter().position(|r| &r.from == node) {
        let cycle = &path[at..];
        let mut members: Vec<String> = cycle.iter().map(|r| r.from.to_string()).collect();
        members.sort();
        if reported.insert(members) {
            let mut names: Vec<String> = cycle.iter().map(|r| r.from.to_string()).collect();
            names.push(node.to_string());
            let closing = cycle[cycle.len() - 1];
            checker.error(
                closing.span.clone(),
                format!("reference cycle: {}", names.join(" -> ")),
                Some("resources cannot depend on each other in a circle: remove one of these references".into()),
            );
        }
        return;
    }
    for r in edges.get(node).cloned().unwrap_or_default() {
        path.push(r);
        walk(checker, edges, &r.to, path, done, reported);
        path.pop();
    }
    if path.iter().all(|r| &r.from != node) {
        done.insert(node);
    }
}
