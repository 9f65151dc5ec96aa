//! Auction kinds, outcomes, and the plaintext reference rule the circuit must agree with.
//!
//! Rule, for every kind: the valid bids are ranked by amount, highest first, **ties broken by
//! lowest bidder index** (the bidder's position in the on-chain commitment order). The first
//! `units` ranked bidders win (`units` is 1 for first-price and Vickrey, `k` for uniform
//! price); if fewer bidders are valid, only they win. Price: first-price, the winning bid;
//! Vickrey, the second-ranked bid; uniform, the `(k+1)`-th ranked bid; in each case `0` when
//! there is no such bid (no reserve price). Excluded bidders take no part.

use std::fmt;
use std::str::FromStr;

use ark_bn254::Fr;

use crate::AuctionError;

/// The most units a uniform-price auction sells: each winner takes 17 bits of the one packed
/// public input, after the 64-bit price.
pub const MAX_UNITS: usize = 11;
/// The most bidders an auction takes (bidder index + 1 fits in 17 bits).
pub const MAX_BIDDERS: usize = 65_535;
/// Bids are below `2^BID_BITS`.
pub const BID_BITS: u32 = 64;
/// Bits per winner in the packed outcome.
pub const WINNER_BITS: u32 = 17;

/// What is sold and how the price is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuctionKind {
    /// The highest bidder wins and pays its bid.
    FirstPrice,
    /// The highest bidder wins and pays the second-highest bid.
    Vickrey,
    /// The `k` highest bidders win one unit each and all pay the `(k+1)`-th highest bid.
    Uniform {
        /// Units sold.
        units: usize,
    },
}

impl AuctionKind {
    /// Winners at most.
    pub fn units(&self) -> usize {
        match self {
            AuctionKind::FirstPrice | AuctionKind::Vickrey => 1,
            AuctionKind::Uniform { units } => *units,
        }
    }

    /// The code the contract stores (0 first-price, 1 Vickrey, 2 uniform).
    pub fn code(&self) -> u8 {
        match self {
            AuctionKind::FirstPrice => 0,
            AuctionKind::Vickrey => 1,
            AuctionKind::Uniform { .. } => 2,
        }
    }

    /// Checks the unit count.
    pub fn validate(&self) -> Result<(), AuctionError> {
        let units = self.units();
        if units == 0 || units > MAX_UNITS {
            return Err(AuctionError::Params(format!("units must be in 1..={MAX_UNITS}, not {units}")));
        }
        Ok(())
    }
}

impl fmt::Display for AuctionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuctionKind::FirstPrice => f.write_str("first"),
            AuctionKind::Vickrey => f.write_str("vickrey"),
            AuctionKind::Uniform { units } => write!(f, "uniform:{units}"),
        }
    }
}

impl FromStr for AuctionKind {
    type Err = AuctionError;

    /// `first`, `vickrey` or `uniform:K`.
    fn from_str(s: &str) -> Result<Self, AuctionError> {
        let kind = match s {
            "first" | "first-price" => AuctionKind::FirstPrice,
            "vickrey" | "second-price" => AuctionKind::Vickrey,
            other => match other.strip_prefix("uniform:") {
                Some(k) => AuctionKind::Uniform {
                    units: k.parse().map_err(|_| AuctionError::Params(format!("bad unit count in {other:?}")))?,
                },
                None => return Err(AuctionError::Params(format!("unknown auction kind {other:?}"))),
            },
        };
        kind.validate()?;
        Ok(kind)
    }
}

/// The published result of an auction.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Winning bidder indices, highest-ranked first (at most `units`).
    pub winners: Vec<usize>,
    /// The price every winner pays.
    pub price: u64,
    /// Bidders whose submission was invalid, ascending.
    pub excluded: Vec<usize>,
}

impl Outcome {
    /// The one public input that carries winners and price:
    /// `price + sum_j (winner_j + 1) * 2^(64 + 17 j)` over the `units` slots, a slot with no
    /// winner counting 0.
    pub fn packed(&self, units: usize) -> Result<Fr, AuctionError> {
        pack(self.price, &self.winners, units)
    }
}

/// See [`Outcome::packed`].
pub fn pack(price: u64, winners: &[usize], units: usize) -> Result<Fr, AuctionError> {
    if winners.len() > units || units > MAX_UNITS {
        return Err(AuctionError::Params(format!("{} winners for {units} units", winners.len())));
    }
    let mut packed = Fr::from(price);
    let mut weight = Fr::from(1u128 << BID_BITS);
    let step = Fr::from(1u64 << WINNER_BITS);
    for w in winners {
        if *w >= MAX_BIDDERS {
            return Err(AuctionError::Params(format!("winner index {w} too large")));
        }
        packed += weight * Fr::from(*w as u64 + 1);
        weight *= step;
    }
    Ok(packed)
}

/// The reference rule (module docs) over `bids`, `None` marking an excluded bidder.
pub fn reference_outcome(kind: AuctionKind, bids: &[Option<u64>]) -> Outcome {
    let mut ranked: Vec<(u64, usize)> = bids.iter().enumerate().filter_map(|(i, b)| b.map(|b| (b, i))).collect();
    // Highest amount first, then lowest index.
    ranked.sort_by(|(a, i), (b, j)| b.cmp(a).then(i.cmp(j)));
    let units = kind.units();
    let winners: Vec<usize> = ranked.iter().take(units).map(|(_, i)| *i).collect();
    let price = match kind {
        AuctionKind::FirstPrice => ranked.first().map_or(0, |(b, _)| *b),
        AuctionKind::Vickrey | AuctionKind::Uniform { .. } => ranked.get(units).map_or(0, |(b, _)| *b),
    };
    let excluded = bids.iter().enumerate().filter(|(_, b)| b.is_none()).map(|(i, _)| i).collect();
    Outcome { winners, price, excluded }
}
