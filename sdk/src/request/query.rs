//! The query string of a [`Request`]: raw, per parameter, or deserialized.

use std::fmt::Display;
use std::str::FromStr;

use super::Request;
use crate::Error;
use crate::percent::percent_decode;

impl Request {
    /// The raw query string without the `?`, if the target had one.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// assert_eq!(Request::get("/?a=1&b").query(), Some("a=1&b"));
    /// assert_eq!(Request::get("/").query(), None);
    /// ```
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Every query parameter as decoded `(name, value)` pairs, in order
    /// (`%XX` escapes and `+` as a space are decoded).
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/?tag=a&tag=b+c");
    /// let pairs = req.query_params();
    /// assert_eq!(pairs, [("tag".to_owned(), "a".to_owned()), ("tag".to_owned(), "b c".to_owned())]);
    /// ```
    pub fn query_params(&self) -> Vec<(String, String)> {
        let Some(query) = self.query.as_deref() else {
            return Vec::new();
        };
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_query(key), decode_query(value))
            })
            .collect()
    }

    /// The first value of query parameter `name`, decoded. `None` if absent;
    /// `Some("")` for `?name` or `?name=`.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/?q=a+b&url=http%3A%2F%2Fx");
    /// assert_eq!(req.query_param("q").as_deref(), Some("a b"));
    /// assert_eq!(req.query_param("url").as_deref(), Some("http://x"));
    /// assert_eq!(req.query_param("missing"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query(key) == name).then(|| decode_query(value))
        })
    }

    /// Query parameter `name` parsed as `T`: `Ok(None)` if absent, a `400`
    /// [`Error`] naming the parameter if it does not parse.
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let req = Request::get("/items?limit=20&page=x");
    /// assert_eq!(req.query_param_as::<u32>("limit").unwrap(), Some(20));
    /// assert_eq!(req.query_param_as::<u32>("offset").unwrap(), None);
    /// let err = req.query_param_as::<u32>("page").unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// assert!(err.message().contains("`page`"));
    /// ```
    pub fn query_param_as<T>(&self, name: &str) -> Result<Option<T>, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.query_param(name)
            .map(|value| {
                value.parse().map_err(|e| {
                    Error::bad_request(format!("invalid query parameter `{name}`=`{value}`: {e}"))
                })
            })
            .transpose()
    }

    /// The whole query string deserialized into `T` (with
    /// `application/x-www-form-urlencoded` rules), or a `400` [`Error`]. No
    /// query counts as an empty one, so `Option` and `#[serde(default)]`
    /// fields cover absent parameters.
    ///
    /// ```
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Page {
    ///     limit: u32,
    ///     #[serde(default)]
    ///     offset: u32,
    /// }
    ///
    /// let req = wasmhost_sdk::Request::get("/items?limit=5");
    /// let page: Page = req.query_as().unwrap();
    /// assert_eq!((page.limit, page.offset), (5, 0));
    /// let err = wasmhost_sdk::Request::get("/items?limit=x").query_as::<Page>().unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// ```
    #[cfg(feature = "serde")]
    pub fn query_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_urlencoded::from_str(self.query().unwrap_or(""))
            .map_err(|e| Error::bad_request(format!("invalid query: {e}")))
    }
}

/// Decode a query component: `%XX` escapes and `+` as a space.
fn decode_query(s: &str) -> String {
    percent_decode(s, true)
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    #[test]
    fn query_param_decodes_and_takes_the_first() {
        let req = Request::new(
            Method::GET,
            "/?url=http%3A%2F%2Fa%2Fb&q=a+b&x=1&x=2&flag&bad=%zz%4",
        );
        assert_eq!(req.query_param("url").as_deref(), Some("http://a/b"));
        assert_eq!(req.query_param("q").as_deref(), Some("a b"));
        assert_eq!(req.query_param("x").as_deref(), Some("1"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(req.query_param("missing"), None);
    }
}
