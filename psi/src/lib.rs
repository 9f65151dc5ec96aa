//! Multi-party private set intersection on Tacit.
