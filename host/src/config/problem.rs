//! `Problem`: one thing wrong with a manifest, located by file, line,
//! column, service and field; `Problems`: all of them at once; and the
//! `Collector` that gathers them while a manifest is loaded.
//!
//! It sits in `config/`, not `config/manifest/`, because `limits` loads and
//! checks its own keys and must not import `manifest` (which imports it).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

/// One thing wrong with a manifest.
///
/// Displays as `manifest.toml:12:9: service `hello`: field `fuel`: expected an
/// integer or `unlimited``; the service and field parts are left out when
/// unknown, and so is `line:col` when the problem has no position (line 0,
/// e.g. the file could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The manifest path as given by the user.
    pub file: PathBuf,
    /// 1-based line of the offending value; 0 when the problem has no position.
    pub line: usize,
    /// 1-based column (in characters) of the offending value; 0 with line 0.
    pub col: usize,
    /// The `name` of the `[[service]]` the problem is in, if any.
    pub service: Option<String>,
    /// The key the problem is about (`fuel`, or `host.listen` outside services).
    pub field: Option<String>,
    /// What is wrong and, when known, how to fix it: lowercase, no trailing
    /// period, user values in backticks.
    pub message: String,
}

impl Problem {
    /// A problem that has no position in the file (line and column 0).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
            service: None,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.col)?;
        }
        if let Some(service) = &self.service {
            write!(f, " service `{service}`:")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field `{field}`:")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Every problem found in a manifest, in file order. Never empty when
/// returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Problems {
    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never true for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the problems in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Collects problems while a manifest is checked: turns byte spans into
/// line and column, and carries the service being checked.
pub(crate) struct Collector<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offset of the start of each line, to turn spans into line:col.
    line_starts: Vec<usize>,
    /// The service whose keys are being checked, named in each problem.
    pub(crate) service: Option<String>,
    problems: Vec<Problem>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Collector {
            file,
            text,
            line_starts,
            service: None,
            problems: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }

    /// Records a problem at `span`, in the current service.
    pub(crate) fn push(&mut self, span: Range<usize>, field: Option<&str>, message: String) {
        let (line, col) = self.line_col(span.start);
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line,
            col,
            service: self.service.clone(),
            field: field.map(str::to_owned),
            message,
        });
    }

    /// Records a problem about `field` of the current service.
    pub(crate) fn field(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        self.push(span, Some(field), message.into());
    }

    /// Deserializes one value on its own; a failure becomes a problem about
    /// `field` on the value's span, and `None`.
    pub(crate) fn load<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        field: &str,
    ) -> Option<Spanned<T>> {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(Spanned::new(value.span(), v)),
            Err(e) => {
                self.field(e.span().unwrap_or(value.span()), field, e.message());
                None
            }
        }
    }

    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// All problems, sorted by position (stable, so equal positions keep the
    /// order in which they were found).
    pub(crate) fn finish(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| (p.line, p.col));
        self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(line: usize, service: Option<&str>, field: Option<&str>) -> Problem {
        Problem {
            file: PathBuf::from("manifest.toml"),
            line,
            col: if line == 0 { 0 } else { 9 },
            service: service.map(str::to_owned),
            field: field.map(str::to_owned),
            message: "expected an integer or `unlimited`".into(),
        }
    }

    #[test]
    fn display_names_file_line_service_and_field() {
        assert_eq!(
            problem(12, Some("hello"), Some("fuel")).to_string(),
            "manifest.toml:12:9: service `hello`: field `fuel`: expected an integer or `unlimited`"
        );
    }

    #[test]
    fn display_leaves_out_unknown_parts() {
        assert_eq!(
            problem(12, None, None).to_string(),
            "manifest.toml:12:9: expected an integer or `unlimited`"
        );
        assert_eq!(
            problem(0, None, None).to_string(),
            "manifest.toml: expected an integer or `unlimited`"
        );
    }

    #[test]
    fn problems_display_one_per_line() {
        let problems = Problems(vec![problem(1, None, None), problem(2, None, None)]);
        assert_eq!(problems.to_string().lines().count(), 2);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "a = \"é\"\nb = 1\n";
        let collector = Collector::new(Path::new("m.toml"), text);
        assert_eq!(collector.line_col(0), (1, 1));
        assert_eq!(collector.line_col(text.find('b').unwrap()), (2, 1));
        assert_eq!(collector.line_col(text.find("\"\n").unwrap()), (1, 7));
    }
}
