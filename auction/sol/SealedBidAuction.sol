// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

interface IPoseidonT3 {
    function poseidon(uint256 a, uint256 b) external pure returns (uint256);
}

/// @title A sealed-bid auction settled by a Tacit collaborative Groth16 proof.
/// @notice Bidders post commitments Poseidon(bid, salt) before the deadline and deal shares of
/// (bid, salt) to the nodes off chain. The contract folds every commitment into one accumulator
/// (acc_0 = this contract's address, acc_i = Poseidon(acc_{i-1}, c_i)), so a proof needs two
/// public inputs whatever the number of bidders: the accumulator continued over the excluded
/// bidders (a bitmap in 240-bit words, nonzero words only), and the packed outcome price + sum_j (winner_j + 1) 2^(64 + 17 j).
/// Ties go to the lowest bidder index (see the auction crate). Gas: one Poseidon per commitment
/// (paid by its bidder); settlement costs one Groth16 verification with two inputs, one Poseidon
/// per excluded bidder, and one storage slot for the outcome.
contract SealedBidAuction {
    /// BN254 scalar field modulus r.
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// The excluded bidders are folded as a bitmap in words of 240 bits; word j is folded as
    /// Poseidon(acc, word + (j + 1) 2^240), and only when nonzero.
    uint256 internal constant WORD_BITS = 240;
    uint256 internal constant MAX_UNITS = 11;
    uint256 internal constant MAX_CAPACITY = 65535;

    address public immutable operator;
    address public immutable verifier;
    IPoseidonT3 public immutable hasher;
    /// 0 first-price, 1 Vickrey (second price), 2 uniform price.
    uint8 public immutable kind;
    /// Winners at most (1, or k for uniform price).
    uint256 public immutable units;
    /// Most bidders (the circuit's slot count).
    uint256 public immutable capacity;
    /// Commitments are accepted while block.timestamp < deadline.
    uint256 public immutable deadline;
    /// Hash of the cluster configuration (the nodes' certificate fingerprints) that runs it.
    bytes32 public immutable nodeSet;

    uint256 public accumulator;
    uint256[] public commitments;
    address[] public bidders;
    mapping(address => bool) public hasCommitted;
    mapping(uint256 => bool) public commitmentTaken;

    /// The settled outcome: bit 255 set once settled, then the packed outcome (price in the
    /// low 64 bits, winner j + 1 in the 17 bits at 64 + 17 j). One storage slot.
    uint256 internal outcome_;
    uint256 internal constant SETTLED = 1 << 255;

    event Committed(uint256 indexed index, address indexed bidder, uint256 commitment);
    event Settled(uint256 price, uint256[] winners, uint256[] excluded);

    error BadParameters();
    error BiddingClosed();
    error BiddingOpen();
    error AlreadyCommitted();
    error DuplicateCommitment();
    error AuctionFull();
    error NotAFieldElement();
    error AlreadySettled();
    error MalformedResult();
    error ProofRejected();

    constructor(
        address verifier_,
        address hasher_,
        uint8 kind_,
        uint256 units_,
        uint256 capacity_,
        uint256 deadline_,
        bytes32 nodeSet_
    ) {
        if (kind_ > 2 || units_ == 0 || units_ > MAX_UNITS || (kind_ < 2 && units_ != 1)) revert BadParameters();
        if (capacity_ == 0 || capacity_ > MAX_CAPACITY || verifier_.code.length == 0 || hasher_.code.length == 0) {
            revert BadParameters();
        }
        operator = msg.sender;
        verifier = verifier_;
        hasher = IPoseidonT3(hasher_);
        kind = kind_;
        units = units_;
        capacity = capacity_;
        deadline = deadline_;
        nodeSet = nodeSet_;
        accumulator = uint256(uint160(address(this)));
    }

    /// Posts a commitment Poseidon(bid, salt); one per address and per value, before the deadline.
    function commit(uint256 commitment) external returns (uint256 index) {
        if (block.timestamp >= deadline) revert BiddingClosed();
        if (commitment >= R) revert NotAFieldElement();
        if (hasCommitted[msg.sender]) revert AlreadyCommitted();
        if (commitmentTaken[commitment]) revert DuplicateCommitment();
        index = commitments.length;
        if (index >= capacity) revert AuctionFull();
        hasCommitted[msg.sender] = true;
        commitmentTaken[commitment] = true;
        commitments.push(commitment);
        bidders.push(msg.sender);
        accumulator = hasher.poseidon(accumulator, commitment);
        emit Committed(index, msg.sender, commitment);
    }

    function bidderCount() external view returns (uint256) {
        return commitments.length;
    }

    function settled() public view returns (bool) {
        return outcome_ & SETTLED != 0;
    }

    function price() external view returns (uint256) {
        return outcome_ & ((1 << 64) - 1);
    }

    /// Winning bidder indices, highest-ranked first.
    function winners() external view returns (uint256[] memory list) {
        uint256 packed = outcome_;
        uint256 count = 0;
        while (count < units && (packed >> (64 + 17 * count)) & 0x1ffff != 0) count++;
        list = new uint256[](count);
        for (uint256 j = 0; j < count; j++) {
            list[j] = ((packed >> (64 + 17 * j)) & 0x1ffff) - 1;
        }
    }

    /// Records the outcome if the proof verifies against the stored commitments. The excluded
    /// bidders are listed in the Settled event (and bound by the proof).
    /// @param price_ the price every winner pays (below 2^64).
    /// @param winnerList winning bidder indices, highest-ranked first (at most `units`).
    /// @param excludedList bidders whose submission the nodes found invalid, ascending.
    /// @param proof Groth16 proof (a.x, a.y, b.x1, b.x0, b.y1, b.y0, c.x, c.y), EIP-197 order.
    function settle(
        uint256 price_,
        uint256[] calldata winnerList,
        uint256[] calldata excludedList,
        uint256[8] calldata proof
    ) external {
        if (block.timestamp < deadline) revert BiddingOpen();
        if (settled()) revert AlreadySettled();
        uint256 n = commitments.length;
        if (price_ >= (1 << 64) || winnerList.length > units) revert MalformedResult();
        uint256 packed = price_;
        for (uint256 j = 0; j < winnerList.length; j++) {
            if (winnerList[j] >= n) revert MalformedResult();
            packed |= (winnerList[j] + 1) << (64 + 17 * j);
        }
        uint256 acc = accumulator;
        uint256 word = 0;
        uint256 wordIndex = 0;
        for (uint256 j = 0; j < excludedList.length; j++) {
            uint256 e = excludedList[j];
            if (e >= n || (j > 0 && e <= excludedList[j - 1])) revert MalformedResult();
            if (word != 0 && e / WORD_BITS != wordIndex) {
                acc = hasher.poseidon(acc, word + ((wordIndex + 1) << WORD_BITS));
                word = 0;
            }
            wordIndex = e / WORD_BITS;
            word |= 1 << (e % WORD_BITS);
        }
        if (word != 0) acc = hasher.poseidon(acc, word + ((wordIndex + 1) << WORD_BITS));
        (bool ok, bytes memory ret) = verifier.staticcall(
            abi.encodeWithSignature(
                "verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[2])",
                [proof[0], proof[1]],
                [[proof[2], proof[3]], [proof[4], proof[5]]],
                [proof[6], proof[7]],
                [acc, packed]
            )
        );
        if (!ok || ret.length != 32 || abi.decode(ret, (uint256)) != 1) revert ProofRejected();
        outcome_ = packed | SETTLED;
        emit Settled(price_, winnerList, excludedList);
    }
}
