//! Known answers: the EIP-155 example transaction and the EIP-712 "Mail" example.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use tacit_signer::curve::{address_of_key, keccak, parse_hex, EcdsaSignature};
use tacit_signer::eth::{hash_struct, typed_data_digest, word_address, Eip1559Tx, Eip712Domain, LegacyTx, Rlp};
use tacit_signer::k256::ecdsa::SigningKey;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).unwrap()
}

fn sign(key: &SigningKey, prehash: &[u8; 32]) -> EcdsaSignature {
    let (sig, rid) = key.sign_prehash_recoverable(prehash).unwrap();
    let bytes = sig.to_bytes();
    EcdsaSignature { r: bytes[..32].try_into().unwrap(), s: bytes[32..].try_into().unwrap(), v: rid.to_byte() }
}

#[test]
fn eip155_example_transaction() {
    let tx = LegacyTx {
        nonce: 9,
        gas_price: 20_000_000_000,
        gas_limit: 21_000,
        to: [0x35; 20],
        value: 1_000_000_000_000_000_000,
        data: Vec::new(),
        chain_id: 1,
    };
    assert_eq!(
        tx.signing_payload(),
        h("ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080")
    );
    assert_eq!(tx.signing_hash().to_vec(), h("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"));
    let key = SigningKey::from_slice(&[0x46; 32]).unwrap();
    let sig = sign(&key, &tx.signing_hash());
    assert_eq!(sig.r.to_vec(), h("28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276"));
    assert_eq!(sig.s.to_vec(), h("67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"));
    assert_eq!(
        tx.encode_signed(&sig),
        h("f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83")
    );
    assert_eq!(sig.recover(&tx.signing_hash()).unwrap(), address_of_key(key.verifying_key()));
    // The key of the example is 0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F.
    assert_eq!(address_of_key(key.verifying_key()).to_vec(), h("9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"));
}

#[test]
fn eip712_mail_example() {
    let domain = Eip712Domain {
        name: "Ether Mail".into(),
        version: "1".into(),
        chain_id: 1,
        verifying_contract: Some(parse_hex("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC").unwrap()),
    };
    assert_eq!(domain.separator().to_vec(), h("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"));
    const PERSON: &str = "Person(string name,address wallet)";
    const MAIL: &str = "Mail(Person from,Person to,string contents)Person(string name,address wallet)";
    let person = |name: &str, wallet: &str| {
        hash_struct(PERSON, &[keccak(name.as_bytes()), word_address(&parse_hex(wallet).unwrap())])
    };
    let from = person("Cow", "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
    let to = person("Bob", "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB");
    let mail = hash_struct(MAIL, &[from, to, keccak(b"Hello, Bob!")]);
    assert_eq!(mail.to_vec(), h("c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"));
    let digest = typed_data_digest(&domain.separator(), &mail);
    assert_eq!(digest.to_vec(), h("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"));
    let cow = SigningKey::from_slice(&keccak(b"cow")).unwrap();
    let sig = sign(&cow, &digest);
    assert_eq!(sig.r.to_vec(), h("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"));
    assert_eq!(sig.s.to_vec(), h("07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"));
    assert_eq!(sig.to_rsv_bytes()[64], 28);
}

#[test]
fn rlp_and_eip1559_shape() {
    assert_eq!(Rlp::uint(0).encode(), vec![0x80]);
    assert_eq!(Rlp::uint(0x7f).encode(), vec![0x7f]);
    assert_eq!(Rlp::uint(0x80).encode(), vec![0x81, 0x80]);
    assert_eq!(Rlp::Bytes(b"dog".to_vec()).encode(), b"\x83dog".to_vec());
    assert_eq!(
        Rlp::List(vec![Rlp::Bytes(b"cat".to_vec()), Rlp::Bytes(b"dog".to_vec())]).encode(),
        b"\xc8\x83cat\x83dog".to_vec()
    );
    let long = vec![0xaa; 60];
    let enc = Rlp::Bytes(long.clone()).encode();
    assert_eq!(&enc[..2], &[0xb8, 60]);
    assert_eq!(&enc[2..], long.as_slice());
    assert_eq!(Rlp::List(Vec::new()).encode(), vec![0xc0]);
    // A signed type-2 transaction recovers to its signer.
    let tx = Eip1559Tx {
        chain_id: 1,
        nonce: 0,
        max_priority_fee_per_gas: 1,
        max_fee_per_gas: 2,
        gas_limit: 21_000,
        to: [0x35; 20],
        value: 5,
        data: vec![1, 2, 3],
    };
    let key = SigningKey::from_slice(&[0x46; 32]).unwrap();
    let sig = sign(&key, &tx.signing_hash());
    let raw = tx.encode_signed(&sig);
    assert_eq!(raw[0], 2);
    assert_eq!(sig.recover(&tx.signing_hash()).unwrap(), address_of_key(key.verifying_key()));
}
