//! Auction kinds parse and print; the plaintext reference rule on small cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use tacit_auction::{reference_outcome, AuctionKind};

#[test]
fn kinds_parse_and_print() {
    for s in ["first", "vickrey", "uniform:3"] {
        assert_eq!(s.parse::<AuctionKind>().map(|k| k.to_string()).ok().as_deref(), Some(s));
    }
    assert!("uniform:0".parse::<AuctionKind>().is_err());
    assert!("uniform:12".parse::<AuctionKind>().is_err());
    assert!("dutch".parse::<AuctionKind>().is_err());
}

#[test]
fn reference_rule() {
    let bids = [Some(5), None, Some(9), Some(9), Some(1)];
    let first = reference_outcome(AuctionKind::FirstPrice, &bids);
    assert_eq!((first.winners.as_slice(), first.price, first.excluded.as_slice()), (&[2][..], 9, &[1][..]));
    let second = reference_outcome(AuctionKind::Vickrey, &bids);
    assert_eq!((second.winners.as_slice(), second.price), (&[2][..], 9));
    let uniform = reference_outcome(AuctionKind::Uniform { units: 3 }, &bids);
    assert_eq!((uniform.winners.as_slice(), uniform.price), (&[2, 3, 0][..], 1));
    let few = reference_outcome(AuctionKind::Uniform { units: 3 }, &[Some(4), None]);
    assert_eq!((few.winners.as_slice(), few.price), (&[0][..], 0));
}
