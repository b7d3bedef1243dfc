//! The request headers, fetched from the host and converted on first use.

use std::cell::{Cell, OnceCell};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The request headers, turned into a [`HeaderMap`] on first use. Most
/// handlers never look at a header, and fetching and converting the host's
/// list is most of the SDK's own cost per request.
pub(super) struct Headers {
    map: OnceCell<HeaderMap>,
    source: Cell<Option<HeaderSource>>,
}

/// Fetches the host's header list, as `(name, value)` pairs.
pub(crate) type HeaderSource = Box<dyn FnOnce() -> Vec<(String, Vec<u8>)>>;

impl Headers {
    pub(super) fn from_map(map: HeaderMap) -> Self {
        Headers {
            map: OnceCell::from(map),
            source: Cell::new(None),
        }
    }

    pub(super) fn lazy(source: HeaderSource) -> Self {
        Headers {
            map: OnceCell::new(),
            source: Cell::new(Some(source)),
        }
    }

    pub(super) fn map(&self) -> &HeaderMap {
        self.map.get_or_init(|| {
            let entries = self
                .source
                .take()
                .map(|source| source())
                .unwrap_or_default();
            let mut map = HeaderMap::with_capacity(entries.len());
            for (name, value) in entries {
                // The host only hands over valid headers; skip anything else.
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    map.append(name, value);
                }
            }
            map
        })
    }

    pub(super) fn map_mut(&mut self) -> &mut HeaderMap {
        self.map();
        self.map.get_mut().expect("`map` just filled it")
    }

    pub(super) fn into_map(mut self) -> HeaderMap {
        std::mem::take(self.map_mut())
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::Request;

    #[test]
    fn host_headers_are_fetched_on_first_use_only() {
        let fetched = std::rc::Rc::new(Cell::new(0));
        let counter = fetched.clone();
        let source = Box::new(move || {
            counter.set(counter.get() + 1);
            vec![
                ("x-request-id".to_owned(), b"id-1".to_vec()),
                ("accept".to_owned(), b"a".to_vec()),
                ("bad name".to_owned(), b"skipped".to_vec()),
            ]
        });
        let req = Request::from_host(Method::GET, "/p?q=1", source, Vec::new());
        assert_eq!(req.path(), "/p");
        assert_eq!(fetched.get(), 0, "nothing fetched before a header is read");
        assert_eq!(req.request_id(), Some("id-1"));
        assert_eq!(req.headers().len(), 2);
        assert_eq!(fetched.get(), 1);
        let copy = req.clone().with_header("accept", "b");
        assert_eq!(copy.headers().get_all("accept").iter().count(), 2);
        assert_eq!(fetched.get(), 1);
    }
}
