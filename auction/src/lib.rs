//! Sealed-bid auctions on Tacit.
