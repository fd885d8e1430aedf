//! Config errors that name the file, line, column and the fix; all of them, not only the first.
//!
//! Rendering follows rustc/cargo: a header line, a `-->` location, the source line with the
//! offending span underlined, and an optional `= help:` line. No colour codes.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line; `None` when the error concerns the whole file (it cannot be read, or a
    /// required table is missing).
    pub line: Option<usize>,
    /// 1-based column in characters; `None` exactly when `line` is.
    pub column: Option<usize>,
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
    snippet: Option<Snippet>,
}

/// The source line an error points into, and which characters of it to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snippet {
    text: String,
    underline_from: usize,
    underline_len: usize,
}

impl ConfigError {
    /// An error about the byte range `span` of `source`.
    pub fn at(
        file: &Path,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        let start = clamp_to_char_boundary(source, span.start);
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line_text = source[line_start..line_end].trim_end_matches('\r');
        let line = source[..start].matches('\n').count() + 1;
        let underline_from = source[line_start..start].chars().count();
        let end =
            clamp_to_char_boundary(source, span.end.max(start)).min(line_start + line_text.len());
        let underline_len = source[start.min(end)..end].chars().count().max(1);
        Self {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(underline_from + 1),
            message: message.into(),
            help,
            snippet: Some(Snippet {
                text: line_text.to_string(),
                underline_from,
                underline_len,
            }),
        }
    }

    /// An error about the file as a whole, without a position.
    pub fn whole_file(file: &Path, message: impl Into<String>, help: Option<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            help,
            snippet: None,
        }
    }
}

fn clamp_to_char_boundary(source: &str, offset: usize) -> usize {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let gutter = self.line.map_or(1, |line| line.to_string().len());
        let pad = " ".repeat(gutter);
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                writeln!(f, "{pad}--> {}:{line}:{column}", self.file.display())?
            }
            _ => writeln!(f, "{pad}--> {}", self.file.display())?,
        }
        if let (Some(line), Some(snippet)) = (self.line, &self.snippet) {
            writeln!(f, "{pad} |")?;
            writeln!(f, "{line} | {}", snippet.text)?;
            // Keep tabs so the carets line up under the same characters.
            let indent: String = snippet
                .text
                .chars()
                .take(snippet.underline_from)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {indent}{}", "^".repeat(snippet.underline_len))?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a stack file, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Sorts by position (whole-file errors first) so output follows the file top to bottom.
    pub fn new(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
        Self { errors }
    }

    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self::new(vec![error])
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            writeln!(f, "{error}")?;
        }
        let file = self.errors.first().map_or_else(
            || "stack file".to_string(),
            |e| e.file.display().to_string(),
        );
        let count = self.errors.len();
        write!(
            f,
            "error: {file} has {count} error{}",
            if count == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let source = "[stack]\nname = \"é-x\"\n";
        let offset = source.find("x\"").unwrap();
        let error = ConfigError::at(
            Path::new("stack.toml"),
            source,
            offset..offset + 1,
            "bad",
            None,
        );
        assert_eq!((error.line, error.column), (Some(2), Some(11)));
    }

    #[test]
    fn renders_like_rustc() {
        let source = "a = 1\n".repeat(11) + "max_instance = 10\n";
        let start = source.find("max_instance").unwrap();
        let error = ConfigError::at(
            Path::new("stack.toml"),
            &source,
            start..start + "max_instance".len(),
            "unknown key `max_instance` in [service.worker]",
            Some("did you mean `max_instances`?".into()),
        );
        let expected = "\
error: unknown key `max_instance` in [service.worker]
  --> stack.toml:12:1
   |
12 | max_instance = 10
   | ^^^^^^^^^^^^
   = help: did you mean `max_instances`?
";
        assert_eq!(error.to_string(), expected);
        let all = ConfigErrors::from(error);
        assert!(all.to_string().ends_with("\nerror: stack.toml has 1 error"));
    }

    #[test]
    fn whole_file_errors_have_no_position_and_sort_first() {
        let source = "x = 1\n";
        let errors = ConfigErrors::new(vec![
            ConfigError::at(Path::new("s.toml"), source, 0..1, "later", None),
            ConfigError::whole_file(Path::new("s.toml"), "missing [stack]", None),
        ]);
        assert_eq!(errors.errors()[0].message, "missing [stack]");
        assert_eq!(errors.errors()[0].line, None);
        assert!(
            errors
                .to_string()
                .contains("error: missing [stack]\n --> s.toml\n")
        );
        assert!(errors.to_string().ends_with("error: s.toml has 2 errors"));
    }
}
