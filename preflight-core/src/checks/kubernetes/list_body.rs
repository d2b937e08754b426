//! Reading a list response as its bytes arrive. Each item is deserialised into the check's own
//! slim type as soon as its last byte is in, and its text is dropped then: a list served whole
//! (a watch-cache read ignores `limit`, and 5,000 nodes are ~25 MB of JSON) never sits in
//! memory as one document, only the item being read and the facts kept from the others.

use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use serde::de::{DeserializeOwned, Error as _};

/// Where the reader is in `{"kind":…,"apiVersion":…,"metadata":{…},"items":[…]}`. The
/// members may come in any order; only `metadata` and `items` are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Before the opening brace.
    Start,
    /// Before a member's key (or, when `first`, the closing brace of an empty object).
    Key { first: bool },
    /// Between a key and its colon.
    Colon(Member),
    /// Before a member's value.
    Value(Member),
    /// After a member: a comma or the closing brace.
    AfterMember,
    /// Inside `items`, before an item (or, when `first`, the closing bracket).
    Item { first: bool },
    /// After an item: a comma or the closing bracket.
    AfterItem,
    /// After the closing brace: only whitespace may follow.
    End,
}

/// The members the reader cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Items,
    Metadata,
    Other,
}

/// Progress through one JSON value whose end has not arrived yet, so that the next bytes
/// continue the scan rather than start it again (a CRD can be a megabyte of schema).
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// Bytes of the value scanned so far.
    at: usize,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn malformed(what: &str) -> serde_json::Error {
    serde_json::Error::custom(format!("malformed list response: {what}"))
}

/// The length of the JSON value that `bytes` starts with, once all of it is there; `None`
/// while its end has not arrived. Only the value's extent is found here (strings, escapes and
/// nesting); serde_json checks the value itself when it reads it.
fn value_len(bytes: &[u8], scan: &mut Scan) -> Result<Option<usize>, serde_json::Error> {
    let Some(&first) = bytes.first() else {
        return Ok(None);
    };
    if !matches!(first, b'{' | b'[' | b'"') {
        if matches!(first, b',' | b':' | b']' | b'}') {
            return Err(malformed(&format!(
                "expected a value, found {:?}",
                first as char
            )));
        }
        // A number or a literal ends at the first delimiter; inside the list's object one
        // always follows, so running out of bytes means more are to come.
        return Ok(bytes
            .iter()
            .position(|&b| is_space(b) || matches!(b, b',' | b']' | b'}')));
    }
    let mut i = scan.at;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if scan.in_string {
            if scan.escaped {
                scan.escaped = false;
            } else if b == b'\\' {
                scan.escaped = true;
            } else if b == b'"' {
                scan.in_string = false;
                if scan.depth == 0 {
                    return Ok(Some(i));
                }
            }
        } else {
            match b {
                b'"' => scan.in_string = true,
                b'{' | b'[' => scan.depth += 1,
                b'}' | b']' => {
                    scan.depth = scan.depth.saturating_sub(1);
                    if scan.depth == 0 {
                        return Ok(Some(i));
                    }
                }
                _ => {}
            }
        }
    }
    scan.at = i;
    Ok(None)
}

/// Reads one list response fed in pieces: [`feed`](Self::feed) each piece of the body as it
/// arrives, then [`finish`](Self::finish) for the list's metadata.
#[derive(Debug)]
pub(crate) struct ListReader<T> {
    /// The bytes not read yet: at most the item being read and the rest of the last piece.
    pending: Vec<u8>,
    place: Place,
    scan: Scan,
    meta: Option<ListMeta>,
    items: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Default for ListReader<T> {
    fn default() -> Self {
        ListReader {
            pending: Vec::new(),
            place: Place::Start,
            scan: Scan::default(),
            meta: None,
            items: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> ListReader<T> {
    /// Takes the next piece of the body; returns the items it completed, in order.
    pub(crate) fn feed(&mut self, piece: &[u8]) -> Result<Vec<T>, serde_json::Error> {
        self.pending.extend_from_slice(piece);
        let mut items = Vec::new();
        let mut pos = 0;
        let result = self.read(&mut pos, &mut items);
        // What was read is dropped now, whatever happened: the reader holds at most one
        // unfinished value.
        self.pending.drain(..pos);
        result.map(|()| items)
    }

    /// The list's metadata (resource version, continue token), once the whole body has been
    /// fed; an error if it ended before the list did.
    pub(crate) fn finish(self) -> Result<ListMeta, serde_json::Error> {
        if self.place != Place::End {
            return Err(malformed("the response ended before the list did"));
        }
        Ok(self.meta.unwrap_or_default())
    }

    /// Reads what `pending` holds from `pos`, advancing `pos` past every complete token.
    fn read(&mut self, pos: &mut usize, items: &mut Vec<T>) -> Result<(), serde_json::Error> {
        loop {
            let bytes = &self.pending[*pos..];
            // Whitespace is skipped only between tokens: `scan.at` > 0 means `pos` is the
            // first byte of a value being scanned.
            let skip = if self.scan.at == 0 {
                bytes.iter().take_while(|&&b| is_space(b)).count()
            } else {
                0
            };
            *pos += skip;
            let bytes = &self.pending[*pos..];
            let Some(&b) = bytes.first() else {
                return Ok(());
            };
            let punct = |want: u8, then: Place| {
                if b == want {
                    Ok(then)
                } else {
                    Err(malformed(&format!(
                        "expected {:?}, found {:?}",
                        want as char, b as char
                    )))
                }
            };
            self.place = match self.place {
                Place::Start => {
                    *pos += 1;
                    punct(b'{', Place::Key { first: true })?
                }
                Place::Key { first: true } if b == b'}' => {
                    *pos += 1;
                    Place::End
                }
                Place::Key { .. } => {
                    if b != b'"' {
                        return Err(malformed(&format!(
                            "expected a member name, found {:?}",
                            b as char
                        )));
                    }
                    let Some(len) = value_len(bytes, &mut self.scan)? else {
                        return Ok(());
                    };
                    let key: String = serde_json::from_slice(&bytes[..len])?;
                    *pos += len;
                    self.scan = Scan::default();
                    Place::Colon(match key.as_str() {
                        "items" => Member::Items,
                        "metadata" => Member::Metadata,
                        _ => Member::Other,
                    })
                }
                Place::Colon(member) => {
                    *pos += 1;
                    punct(b':', Place::Value(member))?
                }
                Place::Value(Member::Items) if b == b'[' => {
                    *pos += 1;
                    Place::Item { first: true }
                }
                Place::Value(member) => {
                    let Some(len) = value_len(bytes, &mut self.scan)? else {
                        return Ok(());
                    };
                    let value = &bytes[..len];
                    match member {
                        Member::Metadata => self.meta = Some(serde_json::from_slice(value)?),
                        // `"items": null` is how Go writes an empty list it never filled.
                        Member::Items if value != b"null" => {
                            return Err(malformed("items is neither an array nor null"));
                        }
                        Member::Items | Member::Other => {}
                    }
                    *pos += len;
                    self.scan = Scan::default();
                    Place::AfterMember
                }
                Place::AfterMember => {
                    *pos += 1;
                    match b {
                        b',' => Place::Key { first: false },
                        b'}' => Place::End,
                        _ => {
                            return Err(malformed(&format!(
                                "expected ',' or '}}', found {:?}",
                                b as char
                            )));
                        }
                    }
                }
                Place::Item { first: true } if b == b']' => {
                    *pos += 1;
                    Place::AfterMember
                }
                Place::Item { .. } => {
                    let Some(len) = value_len(bytes, &mut self.scan)? else {
                        return Ok(());
                    };
                    items.push(serde_json::from_slice(&bytes[..len])?);
                    *pos += len;
                    self.scan = Scan::default();
                    Place::AfterItem
                }
                Place::AfterItem => {
                    *pos += 1;
                    match b {
                        b',' => Place::Item { first: false },
                        b']' => Place::AfterMember,
                        _ => {
                            return Err(malformed(&format!(
                                "expected ',' or ']', found {:?}",
                                b as char
                            )));
                        }
                    }
                }
                Place::End => {
                    return Err(malformed(&format!(
                        "unexpected {:?} after the list",
                        b as char
                    )));
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Feeds `body` in the given pieces; returns the items and the metadata.
    fn read_in<T: DeserializeOwned>(
        body: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<T>, ListMeta), serde_json::Error> {
        let mut reader = ListReader::<T>::default();
        let mut items = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
            let cut = cut.clamp(from, body.len());
            items.extend(reader.feed(&body[from..cut])?);
            from = cut;
        }
        Ok((items, reader.finish()?))
    }

    fn node_list() -> Value {
        json!({
            "kind": "NodeList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "2161", "continue": "eyJ2Ijoi", "remainingItemCount": 12},
            "items": [
                {"metadata": {"name": "a", "labels": {"x": "}]\"{["}}, "status": {"phase": "Ready \\\" ]"}},
                {"metadata": {"name": "b\u{e9}\u{1F600}"}, "spec": {"taints": [[], {}, [1, 2.5e3, -0.1]]}},
                {"metadata": {"name": "c"}, "spec": {"unschedulable": true, "n": null, "m": false}}
            ]
        })
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Named {
        metadata: Name,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Name {
        name: String,
    }

    fn names(items: &[Named]) -> Vec<&str> {
        items.iter().map(|i| i.metadata.name.as_str()).collect()
    }

    #[test]
    fn reads_a_list_cut_at_every_byte() {
        for body in [
            serde_json::to_vec(&node_list()).unwrap(),
            serde_json::to_vec_pretty(&node_list()).unwrap(),
        ] {
            for cut in 0..=body.len() {
                let (items, meta) = read_in::<Named>(&body, &[cut]).unwrap();
                assert_eq!(
                    names(&items),
                    ["a", "b\u{e9}\u{1F600}", "c"],
                    "cut at {cut}"
                );
                assert_eq!(meta.resource_version.as_deref(), Some("2161"));
                assert_eq!(meta.continue_.as_deref(), Some("eyJ2Ijoi"));
                assert_eq!(meta.remaining_item_count, Some(12));
            }
            let bytes: Vec<usize> = (1..body.len()).collect();
            let (items, _) = read_in::<Named>(&body, &bytes).unwrap();
            assert_eq!(items.len(), 3, "byte by byte");
        }
    }

    #[test]
    fn items_are_returned_as_soon_as_they_are_complete() {
        let body = serde_json::to_vec(&node_list()).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        let second = text.find(r#"{"metadata":{"name":"b"#).unwrap();
        let mut reader = ListReader::<Named>::default();
        let first = reader.feed(&body[..second]).unwrap();
        assert_eq!(names(&first), ["a"]);
        assert!(
            reader.pending.len() < 16,
            "the first item's text is dropped: {} bytes kept",
            reader.pending.len()
        );
        assert_eq!(reader.feed(&body[second..]).unwrap().len(), 2);
        reader.finish().unwrap();
    }

    #[test]
    fn members_may_come_in_any_order_and_items_may_be_empty() {
        for (text, want) in [
            (
                r#"{"items":[{"metadata":{"name":"x"}}],"metadata":{"resourceVersion":"7"},"kind":"List"}"#,
                1,
            ),
            (
                r#" { "metadata" : { "resourceVersion" : "7" } , "items" : [ ] } "#,
                0,
            ),
            (r#"{"metadata":{"resourceVersion":"7"},"items":null}"#, 0),
            (r#"{"metadata":{"resourceVersion":"7"}}"#, 0),
        ] {
            let (items, meta) = read_in::<Named>(text.as_bytes(), &[]).unwrap();
            assert_eq!(items.len(), want, "{text}");
            assert_eq!(meta.resource_version.as_deref(), Some("7"), "{text}");
        }
        let (items, meta) = read_in::<Named>(b"{}", &[]).unwrap();
        assert!(items.is_empty() && meta.resource_version.is_none());
    }

    #[test]
    fn rejects_what_is_not_a_whole_list() {
        for text in [
            "",
            r#"{"items":[{"metadata":{"name":"x"}}]"#,
            r#"{"items":[{"metadata":{"name":"x"}}"#,
            r#"{"items":[{"metadata":{"name":"x"}},]}"#,
            r#"{"items":[{"metadata":{"name":"x"}} {"metadata":{"name":"y"}}]}"#,
            r#"{"items":{"metadata":{"name":"x"}}}"#,
            r#"{"items":[]}}"#,
            r#"{"items":[],}"#,
            r#"{items:[]}"#,
            r#"{"items" []}"#,
            r#"{"items":[{"metadata":{"name":7}}]}"#,
            r#"{"metadata":"7","items":[]}"#,
            r#"[]"#,
        ] {
            assert!(
                read_in::<Named>(text.as_bytes(), &[]).is_err(),
                "{text:?} was read as a list"
            );
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\"\\\\{}\\[\\],: ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"\\\\]{0,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any list, cut anywhere, reads as serde_json reads it whole.
        #[test]
        fn reads_any_list_as_serde_json_does(
            items in prop::collection::vec(json_value(), 0..8),
            extra in json_value(),
            pretty in any::<bool>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let list = json!({"kind": "List", "extra": extra, "metadata": {"resourceVersion": "42"}, "items": items});
            let body = if pretty { serde_json::to_vec_pretty(&list) } else { serde_json::to_vec(&list) }.unwrap();
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
            cuts.sort_unstable();
            let (read, meta) = read_in::<Value>(&body, &cuts).unwrap();
            // Compared with serde_json's own reading, not with `items`: a float need not
            // survive printing and parsing bit for bit.
            let whole: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(Value::Array(read), whole["items"].clone());
            prop_assert_eq!(meta.resource_version.as_deref(), Some("42"));
        }
    }
}
