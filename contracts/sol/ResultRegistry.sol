// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

interface IGroth16Verifier {
    function publicInputCount() external view returns (uint256);
}

/// @title Registry of proven results: each result id is published once, with a Groth16 proof
/// checked by a Groth16Verifier deployed for the circuit's verifying key.
contract ResultRegistry {
    /// The verifier of the circuit's proofs.
    address public immutable verifier;
    /// Its number of public inputs.
    uint256 public immutable publicInputCount;
    bytes4 private immutable SELECTOR;

    /// keccak256(abi.encodePacked(publicInputs)) of each published result; zero if unpublished.
    mapping(bytes32 => bytes32) public published;

    /// A result was published with a valid proof.
    event ResultPublished(bytes32 indexed resultId, address indexed publisher, uint256[] publicInputs);

    error AlreadyPublished(bytes32 resultId);
    error WrongInputCount(uint256 given, uint256 expected);
    error InvalidProof(bytes32 resultId);

    constructor(address verifier_) {
        verifier = verifier_;
        uint256 n = IGroth16Verifier(verifier_).publicInputCount();
        publicInputCount = n;
        SELECTOR = bytes4(
            keccak256(abi.encodePacked("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[", _decimal(n), "])"))
        );
    }

    /// Verifies `proof` ([a.x, a.y, b.x.c1, b.x.c0, b.y.c1, b.y.c0, c.x, c.y]) for
    /// `publicInputs` and records the result under `resultId`; reverts if the id is taken, the
    /// input count is wrong or the proof is invalid.
    function publish(bytes32 resultId, uint256[] calldata publicInputs, uint256[8] calldata proof) external {
        if (published[resultId] != bytes32(0)) revert AlreadyPublished(resultId);
        if (publicInputs.length != publicInputCount) revert WrongInputCount(publicInputs.length, publicInputCount);
        (bool ok, bytes memory ret) = verifier.staticcall(abi.encodePacked(SELECTOR, proof, publicInputs));
        if (!ok || ret.length != 32 || abi.decode(ret, (uint256)) != 1) revert InvalidProof(resultId);
        bytes32 h = keccak256(abi.encodePacked(publicInputs));
        // A zero hash would read as unpublished; keccak256 output is zero with negligible probability.
        published[resultId] = h == bytes32(0) ? bytes32(uint256(1)) : h;
        emit ResultPublished(resultId, msg.sender, publicInputs);
    }

    /// Whether `resultId` was published.
    function isPublished(bytes32 resultId) external view returns (bool) {
        return published[resultId] != bytes32(0);
    }

    function _decimal(uint256 v) private pure returns (bytes memory s) {
        if (v == 0) return "0";
        uint256 len = 0;
        for (uint256 t = v; t != 0; t /= 10) len++;
        s = new bytes(len);
        for (; v != 0; v /= 10) s[--len] = bytes1(uint8(48 + (v % 10)));
    }
}
