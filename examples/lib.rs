//! Examples of using hookbridge as a library; see the `examples` targets of this package.
