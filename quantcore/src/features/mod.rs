//! Rolling indicators in streaming form (TODO).
