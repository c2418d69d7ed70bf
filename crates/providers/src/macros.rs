//! Macros shared by the provider modules. Declared with `#[macro_use]` in `lib.rs` before the
//! provider modules, so that every provider can use them without an import.

/// Generates a string enum: one variant per known wire string, plus `Other(String)` for any
/// other value. Deserializes from and serializes to the wire string, so an unknown value
/// round-trips unchanged.
///
/// Each arm names its wire string explicitly (`Opened => "opened"`), so any spelling works
/// (`snake_case`, `jira:issue_created`, `Merge Request Hook`, ...). The generated type has:
///
/// - `#[derive(Debug, Clone, PartialEq, Eq, Hash)]`, plus the attributes given before its name
///   (its doc comment above all); each known variant is documented with its wire string;
/// - `as_str()`, the wire string of the value;
/// - `From<&str>` and `From<String>` (an unknown string becomes `Other`, moved, not copied,
///   from a `String`);
/// - `Display`, writing the wire string;
/// - `Serialize` and `Deserialize` as a JSON string.
///
/// ```text
/// string_enum! {
///     /// The `action` of an `issues` event.
///     IssuesAction {
///         Opened => "opened",
///         Closed => "closed",
///     }
/// }
/// ```
// Every provider but Standard Webhooks (whose events are untyped) uses it.
#[cfg_attr(
    not(any(
        feature = "asana",
        feature = "github",
        feature = "gitlab",
        feature = "jira",
        feature = "pagerduty",
        feature = "slack",
        feature = "travis",
        feature = "trello"
    )),
    allow(unused_macros)
)]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($variant:ident => $wire:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )+
            /// A value this crate does not know (yet), kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Other(s),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct StrVisitor;
                impl ::serde::de::Visitor<'_> for StrVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " string"))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::from(v))
                    }
                    fn visit_string<E: ::serde::de::Error>(self, v: String) -> Result<$name, E> {
                        Ok($name::from(v))
                    }
                }
                deserializer.deserialize_str(StrVisitor)
            }
        }
    };
}
