// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

interface ICommittedVerifier {
    function publicInputCount() external view returns (uint256);
    function groupCount() external view returns (uint256);
}

/// @title Registry of results proven with committed groups (a Groth16CommittedVerifier's
/// proofs). The first `ownedGroups` groups of a proof belong to named accounts, e.g. the
/// institutions of a PSI query, each committed to its own list. A query names those accounts
/// when it is opened. Each account posts its group's commitment itself. A result is published
/// once, and only with a valid proof whose owned groups are exactly the posted commitments. A
/// reader of the result therefore knows it was computed from the data each owner committed to.
contract CommittedResultRegistry {
    /// The verifier of the proofs.
    address public immutable verifier;
    /// Its number of public inputs (without the challenge).
    uint256 public immutable publicInputCount;
    /// Its number of committed groups.
    uint256 public immutable groupCount;
    /// The groups, counted from the first, that belong to a query's accounts.
    uint256 public immutable ownedGroups;
    uint256 private immutable CALL_SIZE;

    struct Query {
        address[] owners;
        /// keccak256(x, y) of each posted commitment (made nonzero); zero if not posted.
        bytes32[] commitments;
        /// keccak256 of the published public inputs (made nonzero); zero if unpublished.
        bytes32 result;
    }

    mapping(bytes32 => Query) private queries;

    /// A query was opened with these owners, in group order.
    event QueryOpened(bytes32 indexed queryId, address[] owners);
    /// The owner of `slot` posted its group's commitment `(x, y)`.
    event CommitmentPosted(bytes32 indexed queryId, uint256 indexed slot, uint256 x, uint256 y);
    /// A result was published with a valid proof over the posted commitments.
    event ResultPublished(bytes32 indexed queryId, address indexed publisher, uint256[] publicInputs);

    error BadOwnedGroups(uint256 owned, uint256 groups);
    error QueryExists(bytes32 queryId);
    error NoQuery(bytes32 queryId);
    error WrongOwners(uint256 given, uint256 expected);
    error NotOwner(bytes32 queryId, uint256 slot);
    error AlreadyPosted(bytes32 queryId, uint256 slot);
    error AlreadyPublished(bytes32 queryId);
    error MissingCommitment(bytes32 queryId, uint256 slot);
    error WrongCall(uint256 length);
    error CommitmentMismatch(bytes32 queryId, uint256 slot);
    error InvalidProof(bytes32 queryId);

    constructor(address verifier_, uint256 ownedGroups_) {
        uint256 n = ICommittedVerifier(verifier_).publicInputCount();
        uint256 s = ICommittedVerifier(verifier_).groupCount();
        if (ownedGroups_ == 0 || ownedGroups_ > s) revert BadOwnedGroups(ownedGroups_, s);
        verifier = verifier_;
        publicInputCount = n;
        groupCount = s;
        ownedGroups = ownedGroups_;
        // The selector is the verifier's to check (it reverts on another, which reads as an
        // invalid proof here); the size fixes where the commitments and inputs are.
        CALL_SIZE = 4 + 32 * (8 + 4 * s + n);
    }

    /// Opens `queryId` with one owner account per owned group, in group order.
    function open(bytes32 queryId, address[] calldata owners) external {
        Query storage q = queries[queryId];
        if (q.owners.length != 0) revert QueryExists(queryId);
        if (owners.length != ownedGroups) revert WrongOwners(owners.length, ownedGroups);
        for (uint256 i = 0; i < owners.length; i++) {
            if (owners[i] == address(0)) revert WrongOwners(i, ownedGroups);
        }
        q.owners = owners;
        q.commitments = new bytes32[](owners.length);
        emit QueryOpened(queryId, owners);
    }

    /// Posts the commitment `(x, y)` of the caller's group `slot`, once.
    function post(bytes32 queryId, uint256 slot, uint256 x, uint256 y) external {
        Query storage q = queries[queryId];
        if (q.owners.length == 0) revert NoQuery(queryId);
        if (slot >= q.owners.length || q.owners[slot] != msg.sender) revert NotOwner(queryId, slot);
        if (q.commitments[slot] != bytes32(0)) revert AlreadyPosted(queryId, slot);
        q.commitments[slot] = _pointHash(x, y);
        emit CommitmentPosted(queryId, slot, x, y);
    }

    /// Publishes the result of `queryId`: `call` is the verifier's whole calldata
    /// (`verifyProof` with the proof, every group's commitment and knowledge proof, and the
    /// public inputs). Reverts unless every owner has posted, each owned group's commitment is
    /// the posted one, and the verifier accepts.
    function publish(bytes32 queryId, bytes calldata call) external {
        Query storage q = queries[queryId];
        if (q.owners.length == 0) revert NoQuery(queryId);
        if (q.result != bytes32(0)) revert AlreadyPublished(queryId);
        if (call.length != CALL_SIZE) revert WrongCall(call.length);
        for (uint256 c = 0; c < ownedGroups; c++) {
            bytes32 posted = q.commitments[c];
            if (posted == bytes32(0)) revert MissingCommitment(queryId, c);
            uint256 offset = 4 + 32 * 8 + 64 * c;
            uint256 x = uint256(bytes32(call[offset:offset + 32]));
            uint256 y = uint256(bytes32(call[offset + 32:offset + 64]));
            if (_pointHash(x, y) != posted) revert CommitmentMismatch(queryId, c);
        }
        (bool ok, bytes memory ret) = verifier.staticcall(call);
        if (!ok || ret.length != 32 || abi.decode(ret, (uint256)) != 1) revert InvalidProof(queryId);
        uint256 from = 4 + 32 * (8 + 4 * groupCount);
        uint256[] memory inputs = new uint256[](publicInputCount);
        for (uint256 i = 0; i < inputs.length; i++) {
            inputs[i] = uint256(bytes32(call[from + 32 * i:from + 32 * i + 32]));
        }
        q.result = _nonzero(keccak256(abi.encodePacked(inputs)));
        emit ResultPublished(queryId, msg.sender, inputs);
    }

    /// The owners of `queryId` (empty if it was never opened).
    function ownersOf(bytes32 queryId) external view returns (address[] memory) {
        return queries[queryId].owners;
    }

    /// Whether the owner of `slot` has posted its commitment.
    function isPosted(bytes32 queryId, uint256 slot) external view returns (bool) {
        Query storage q = queries[queryId];
        return slot < q.commitments.length && q.commitments[slot] != bytes32(0);
    }

    /// keccak256 of the published public inputs (made nonzero), or zero if unpublished.
    function resultOf(bytes32 queryId) external view returns (bytes32) {
        return queries[queryId].result;
    }

    function _pointHash(uint256 x, uint256 y) private pure returns (bytes32) {
        return _nonzero(keccak256(abi.encodePacked(x, y)));
    }

    /// A zero hash would read as "none"; keccak256 is zero with negligible probability.
    function _nonzero(bytes32 h) private pure returns (bytes32) {
        return h == bytes32(0) ? bytes32(uint256(1)) : h;
    }

}
