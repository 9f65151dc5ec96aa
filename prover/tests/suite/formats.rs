//! snarkjs JSON and EVM calldata: round trips through an independent parser, known-answer
//! vectors from real snarkjs output, and tampering.

use ark_bn254::{Bn254, Fq, Fq12, Fq2, Fq6, Fr, G1Affine, G2Affine};
use ark_ec::{pairing::Pairing, AffineRepr};
use ark_ff::{One, PrimeField, Zero};
use ark_groth16::{Groth16, Proof, VerifyingKey};
use ark_snark::SNARK;
use num_bigint::BigUint;
use serde_json::Value;

use super::{rng, setup_chain, setup_toy, Chain, TempDir, Toy};
use tacit_prover::qap;
use tacit_prover::snarkjs::{self, EvmProof};

// ---------------------------------------------------------------------------------------------
// An independent parser of snarkjs's formats, written from the format description only:
// serde_json::Value → decimal strings → range-checked integers → field elements → points
// checked on the curve and in the subgroup. Shares no code with `tacit_prover::snarkjs`.

/// BN254 base field modulus q.
const Q: &str = "21888242871839275222246405745257275088696311157297823662689037894645226208583";
/// BN254 scalar field modulus r.
const R: &str = "21888242871839275222246405745257275088548364400416034343698204186575808495617";

type P<T> = Result<T, String>;

fn big(s: &str) -> BigUint {
    BigUint::parse_bytes(s.as_bytes(), 10).unwrap()
}

fn decimal(v: &Value, modulus: &str) -> P<BigUint> {
    let s = v.as_str().ok_or_else(|| format!("{v} is not a string"))?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return Err(format!("{s:?} is not a canonical decimal"));
    }
    let n = BigUint::parse_bytes(s.as_bytes(), 10).ok_or("unparsable")?;
    if n >= big(modulus) {
        return Err(format!("{s} is not below the modulus"));
    }
    Ok(n)
}

fn ind_fq(v: &Value) -> P<Fq> {
    Ok(Fq::from_le_bytes_mod_order(&decimal(v, Q)?.to_bytes_le()))
}

fn ind_fr(v: &Value) -> P<Fr> {
    Ok(Fr::from_le_bytes_mod_order(&decimal(v, R)?.to_bytes_le()))
}

fn arr(v: &Value, len: usize) -> P<&Vec<Value>> {
    let a = v.as_array().ok_or_else(|| format!("{v} is not an array"))?;
    if a.len() != len {
        return Err(format!("array of {} elements, expected {len}", a.len()));
    }
    Ok(a)
}

fn ind_fq2(v: &Value) -> P<Fq2> {
    let a = arr(v, 2)?;
    Ok(Fq2::new(ind_fq(&a[0])?, ind_fq(&a[1])?))
}

fn ind_g1(v: &Value) -> P<G1Affine> {
    let a = arr(v, 3)?;
    let (x, y, z) = (ind_fq(&a[0])?, ind_fq(&a[1])?, ind_fq(&a[2])?);
    if z.is_zero() && x.is_zero() && y.is_one() {
        return Ok(G1Affine::identity());
    }
    if !z.is_one() {
        return Err("G1 z must be 1".into());
    }
    let p = G1Affine::new_unchecked(x, y);
    if !p.is_on_curve() || !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err("G1 point not on the curve".into());
    }
    Ok(p)
}

fn ind_g2(v: &Value) -> P<G2Affine> {
    let a = arr(v, 3)?;
    let (x, y, z) = (ind_fq2(&a[0])?, ind_fq2(&a[1])?, ind_fq2(&a[2])?);
    if z.is_zero() && x.is_zero() && y.is_one() {
        return Ok(G2Affine::identity());
    }
    if !z.is_one() {
        return Err("G2 z must be [1, 0]".into());
    }
    let p = G2Affine::new_unchecked(x, y);
    if !p.is_on_curve() {
        return Err("G2 point not on the curve".into());
    }
    if !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err("G2 point not in the subgroup".into());
    }
    Ok(p)
}

fn ind_fq12(v: &Value) -> P<Fq12> {
    let a = arr(v, 2)?;
    let fq6 = |v: &Value| -> P<Fq6> {
        let b = arr(v, 3)?;
        Ok(Fq6::new(ind_fq2(&b[0])?, ind_fq2(&b[1])?, ind_fq2(&b[2])?))
    };
    Ok(Fq12::new(fq6(&a[0])?, fq6(&a[1])?))
}

fn field<'a>(v: &'a Value, key: &str) -> P<&'a Value> {
    v.get(key).ok_or_else(|| format!("missing {key}"))
}

fn header(v: &Value) -> P<()> {
    if field(v, "protocol")? != "groth16" || field(v, "curve")? != "bn128" {
        return Err("not groth16/bn128".into());
    }
    Ok(())
}

fn ind_vk(v: &Value) -> P<VerifyingKey<Bn254>> {
    header(v)?;
    let n_public = field(v, "nPublic")?.as_u64().ok_or("nPublic")? as usize;
    let ic = field(v, "IC")?.as_array().ok_or("IC")?;
    if ic.len() != n_public + 1 {
        return Err("IC length".into());
    }
    let vk = VerifyingKey {
        alpha_g1: ind_g1(field(v, "vk_alpha_1")?)?,
        beta_g2: ind_g2(field(v, "vk_beta_2")?)?,
        gamma_g2: ind_g2(field(v, "vk_gamma_2")?)?,
        delta_g2: ind_g2(field(v, "vk_delta_2")?)?,
        gamma_abc_g1: ic.iter().map(ind_g1).collect::<P<Vec<_>>>()?,
    };
    if ind_fq12(field(v, "vk_alphabeta_12")?)? != Bn254::pairing(vk.alpha_g1, vk.beta_g2).0 {
        return Err("vk_alphabeta_12 is not e(alpha, beta)".into());
    }
    Ok(vk)
}

fn ind_proof(v: &Value) -> P<Proof<Bn254>> {
    header(v)?;
    Ok(Proof { a: ind_g1(field(v, "pi_a")?)?, b: ind_g2(field(v, "pi_b")?)?, c: ind_g1(field(v, "pi_c")?)? })
}

fn ind_public(v: &Value) -> P<Vec<Fr>> {
    v.as_array().ok_or("public is not an array")?.iter().map(ind_fr).collect()
}

/// Parse all three documents independently and verify with ark-groth16.
fn ind_verify(vk: &Value, proof: &Value, public: &Value) -> P<bool> {
    let (vk, proof, public) = (ind_vk(vk)?, ind_proof(proof)?, ind_public(public)?);
    if public.len() + 1 != vk.gamma_abc_g1.len() {
        return Err("public input count".into());
    }
    Groth16::<Bn254>::verify(&vk, &public, &proof).map_err(|e| e.to_string())
}

fn lib_verify(vk: &Value, proof: &Value, public: &Value) -> Result<bool, String> {
    let vk = snarkjs::verification_key_from_snarkjs(&serde_json::from_value(vk.clone()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let proof = snarkjs::proof_from_snarkjs(&serde_json::from_value(proof.clone()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let public = snarkjs::public_from_snarkjs(
        &serde_json::from_value::<Vec<String>>(public.clone()).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    qap::verify_proof(&vk, &public, &proof).map_err(|e| e.to_string())
}

fn read_value(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every string leaf of `v`, as a JSON pointer.
fn string_leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(_) => out.push(at),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| string_leaves(x, format!("{at}/{i}"), out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| string_leaves(x, format!("{at}/{k}"), out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------

struct Files {
    _dir: TempDir,
    vk: Value,
    proof: Value,
    public: Value,
}

fn proven_files(tag: &str, pk: &ark_groth16::ProvingKey<Bn254>, m: &qap::R1csMatrices, z: &[Fr]) -> Files {
    let dir = TempDir::new(tag);
    let proof = qap::prove_single_random(pk, m, z, &mut rng(20)).unwrap();
    let public = m.public_inputs(z).unwrap();
    snarkjs::write_verification_key_json(&pk.vk, dir.path("verification_key.json")).unwrap();
    snarkjs::write_proof_json(&proof, dir.path("proof.json")).unwrap();
    snarkjs::write_public_json(public, dir.path("public.json")).unwrap();
    // The library reads its own files back too.
    assert_eq!(snarkjs::read_verification_key_json(dir.path("verification_key.json")).unwrap(), pk.vk);
    assert_eq!(snarkjs::read_proof_json(dir.path("proof.json")).unwrap(), proof);
    assert_eq!(snarkjs::read_public_json(dir.path("public.json")).unwrap(), public);
    Files {
        vk: read_value(&dir.path("verification_key.json")),
        proof: read_value(&dir.path("proof.json")),
        public: read_value(&dir.path("public.json")),
        _dir: dir,
    }
}

#[test]
fn files_round_trip_through_an_independent_parser_and_verify() {
    let (pk, m) = setup_toy();
    let (_, z) = qap::synthesize_for_proving(Toy::new(11, 13)).unwrap();
    let f = proven_files("toy", &pk, &m, &z);
    assert_eq!(ind_verify(&f.vk, &f.proof, &f.public), Ok(true));
    assert_eq!(ind_vk(&f.vk).unwrap(), pk.vk);
    assert_eq!(f.vk["nPublic"], 2);
    assert_eq!(f.public, serde_json::json!([(Fr::from(121u64 + 13)).to_string(), "13"]));

    let (pk, m) = setup_chain(300);
    let (_, z) = qap::synthesize_for_proving(Chain { n: 300, x0: Some(Fr::from(5u64)) }).unwrap();
    let f = proven_files("chain", &pk, &m, &z);
    assert_eq!(ind_verify(&f.vk, &f.proof, &f.public), Ok(true));
    assert_eq!(lib_verify(&f.vk, &f.proof, &f.public), Ok(true));
}

#[test]
fn snarkjs_layout_is_exact() {
    let (pk, m) = setup_toy();
    let (_, z) = qap::synthesize_for_proving(Toy::new(1, 2)).unwrap();
    let proof = qap::prove_single_random(&pk, &m, &z, &mut rng(21)).unwrap();

    let text = snarkjs::to_snarkjs_string(&snarkjs::proof_to_snarkjs(&proof)).unwrap();
    let keys: Vec<&str> =
        text.lines().filter(|l| l.starts_with(" \"")).map(|l| l.trim().split('"').nth(1).unwrap()).collect();
    assert_eq!(keys, ["pi_a", "pi_b", "pi_c", "protocol", "curve"]);
    assert!(text.starts_with("{\n \"pi_a\": [\n  \""), "{text}");
    assert!(text.contains(" \"protocol\": \"groth16\",\n \"curve\": \"bn128\"\n}"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["pi_a"][2], "1");
    assert_eq!(v["pi_b"][2], serde_json::json!(["1", "0"]));

    let text = snarkjs::to_snarkjs_string(&snarkjs::verification_key_to_snarkjs(&pk.vk)).unwrap();
    let keys: Vec<&str> =
        text.lines().filter(|l| l.starts_with(" \"")).map(|l| l.trim().split('"').nth(1).unwrap()).collect();
    assert_eq!(
        keys,
        [
            "protocol",
            "curve",
            "nPublic",
            "vk_alpha_1",
            "vk_beta_2",
            "vk_gamma_2",
            "vk_delta_2",
            "vk_alphabeta_12",
            "IC"
        ]
    );
    assert!(text.contains("\n \"nPublic\": 2,\n"), "{text}");

    // Identity encodings.
    assert_eq!(snarkjs::g1_to_json(&G1Affine::identity()), ["0", "1", "0"].map(String::from));
    let g2id = snarkjs::g2_to_json(&G2Affine::identity());
    assert_eq!(serde_json::to_value(&g2id).unwrap(), serde_json::json!([["0", "0"], ["1", "0"], ["0", "0"]]));
    assert!(snarkjs::g2_from_json(&g2id, "id").unwrap().is_zero());
    assert!(snarkjs::g1_from_json(&["0", "1", "0"].map(String::from), "id").unwrap().is_zero());
}

/// A verification key as written by `snarkjs zkey export verificationkey` (public; its
/// alpha/beta come from the Hermez powers-of-tau ceremony, so many published keys share them).
const SNARKJS_VK: &str = r#"{
 "protocol": "groth16", "curve": "bn128", "nPublic": 4,
 "vk_alpha_1": ["20491192805390485299153009773594534940189261866228447918068658471970481763042",
  "9383485363053290200918347156157836566562967994039712273449902621266178545958", "1"],
 "vk_beta_2": [["6375614351688725206403948262868962793625744043794305715222011528459656738731",
   "4252822878758300859123897981450591353533073413197771768651442665752259397132"],
  ["10505242626370262277552901082094356697409835680220590971873171140371331206856",
   "21847035105528745403288232691147584728191162732299865338377159692350059136679"], ["1", "0"]],
 "vk_gamma_2": [["10857046999023057135944570762232829481370756359578518086990519993285655852781",
   "11559732032986387107991004021392285783925812861821192530917403151452391805634"],
  ["8495653923123431417604973247489272438418190587263600148770280649306958101930",
   "4082367875863433681332203403145435568316851327593401208105741076214120093531"], ["1", "0"]],
 "vk_delta_2": [["350352993197619142271787954816016866685405827145529211099129960138333895351",
   "11259417273060665485033625570096279630738839231801621733208112409472659750706"],
  ["6581027027803678033105995881266700971824953327966093737311320327413957537796",
   "17705084644100501057686354131121309200871133134166541010282709611570760160116"], ["1", "0"]],
 "vk_alphabeta_12": [
  [["2029413683389138792403550203267699914886160938906632433982220835551125967885",
    "21072700047562757817161031222997517981543347628379360635925549008442030252106"],
   ["5940354580057074848093997050200682056184807770593307860589430076672439820312",
    "12156638873931618554171829126792193045421052652279363021382169897324752428276"],
   ["7898200236362823042373859371574133993780991612861777490112507062703164551277",
    "7074218545237549455313236346927434013100842096812539264420499035217050630853"]],
  [["7077479683546002997211712695946002074877511277312570035766170199895071832130",
    "10093483419865920389913245021038182291233451549023025229112148274109565435465"],
   ["4595479056700221319381530156280926371456704509942304414423590385166031118820",
    "19831328484489333784475432780421641293929726139240675179672856274388269393268"],
   ["11934129596455521040620786944827826205713621633706285934057045369193958244500",
    "8037395052364110730298837004334506829870972346962140206007064471173334027475"]]],
 "IC": [
  ["11980259404895261761475782449845098746338182978185870241217917563913897485030",
   "10855856319717038155137836614255336046969377968036737096070988058561370449327", "1"],
  ["14016714963931972139399068725852416229022307538817052195756308271612868452344",
   "17524321616779334076563551363039953424972428231987869798917057647174772182008", "1"],
  ["9527045980815012807591971068163832511923055490703891181742476683249663400812",
   "14919437593091433436135478965229793383175377442971270426065882879972890130681", "1"],
  ["3639234697306878654428746187161679523244737811867565309168091655504927526777",
   "11621081796882613972177228753660940901724246325363725488764147861203394608548", "1"],
  ["15920831021378221155240937686904389906888962767568859307620388047895324408072",
   "20436997174641548986398492705818251523734696653333260143721187595574662853297", "1"]]
}"#;

/// `proof.json` from snarkjs's own test fixtures (key order as that snarkjs version wrote it).
const SNARKJS_PROOF: &str = r#"{
 "pi_a": ["3002132502537022244293737746083028622941643263426232960851991220479766714645",
  "1729748454858602695362092671208154764954833288720129352955818022481383726614", "1"],
 "pi_c": ["12639443747995630811187961458892648956614967444782447792396166887129303243500",
  "1099355372791807643682102423882091438923440910482113395654737583480854051558", "1"],
 "pi_b": [["2700553303698145822700568474588661819199860068538485787289205450601412166588",
   "2742475072310096455905179498763848045387786905742854557293423170639436286970"],
  ["8522842861668909881130066703169634027288336975217779803644954281669857350982",
   "9939079868748959877780606191735888485604177922774511267854124435691651538785"], ["1", "0"]],
 "protocol": "groth16", "curve": "bn128"
}"#;

#[test]
fn known_answers_from_real_snarkjs_output() {
    // Independent parser: points (G2 as [c0, c1]) are on the curve and in the subgroup, and
    // ark's e(alpha, beta) equals snarkjs's vk_alphabeta_12 in snarkjs's tower layout.
    let v: Value = serde_json::from_str(SNARKJS_VK).unwrap();
    let vk = ind_vk(&v).unwrap();
    // The library parses the real file to the same key and re-exports it identically.
    let parsed: snarkjs::SnarkjsVerificationKey = serde_json::from_str(SNARKJS_VK).unwrap();
    let lib_vk = snarkjs::verification_key_from_snarkjs(&parsed).unwrap();
    assert_eq!(lib_vk, vk);
    assert_eq!(snarkjs::verification_key_to_snarkjs(&lib_vk), parsed);
    // Swapping c0/c1 of a G2 coordinate leaves the curve or the subgroup.
    let mut swapped = v.clone();
    let x = swapped["vk_beta_2"][0].as_array_mut().unwrap();
    x.swap(0, 1);
    assert!(ind_vk(&swapped).is_err());
    assert!(snarkjs::verification_key_from_snarkjs(&serde_json::from_value(swapped).unwrap()).is_err());

    // A beta on the curve but outside the subgroup is refused by both parsers.
    let mut outside = v.clone();
    outside["vk_beta_2"] = serde_json::to_value(snarkjs::g2_to_json(&super::g2_outside_subgroup())).unwrap();
    assert!(ind_vk(&outside).unwrap_err().contains("subgroup"));
    let err = snarkjs::verification_key_from_snarkjs(&serde_json::from_value(outside).unwrap()).unwrap_err();
    assert!(err.to_string().contains("subgroup"), "{err}");

    let proof: snarkjs::SnarkjsProof = serde_json::from_str(SNARKJS_PROOF).unwrap();
    let p = snarkjs::proof_from_snarkjs(&proof).unwrap();
    assert_eq!(p, ind_proof(&serde_json::from_str(SNARKJS_PROOF).unwrap()).unwrap());
    assert_eq!(snarkjs::proof_to_snarkjs(&p), proof);
}

#[test]
fn tampered_files_are_rejected_never_panic() {
    let (pk, m) = setup_toy();
    let (_, z) = qap::synthesize_for_proving(Toy::new(4, 9)).unwrap();
    let f = proven_files("tamper", &pk, &m, &z);
    let docs = [&f.vk, &f.proof, &f.public];
    let verify_both = |d: [&Value; 3]| (ind_verify(d[0], d[1], d[2]), lib_verify(d[0], d[1], d[2]));

    let modulus_q = big(Q);
    for which in 0..3 {
        let mut leaves = Vec::new();
        string_leaves(docs[which], String::new(), &mut leaves);
        for ptr in leaves {
            let original = docs[which].pointer(&ptr).unwrap().as_str().unwrap().to_string();
            if original == "groth16" || original == "bn128" {
                let mut t = docs[which].clone();
                *t.pointer_mut(&ptr).unwrap() = Value::String("plonk".into());
                let mut d = docs;
                d[which] = &t;
                let (a, b) = verify_both(d);
                assert!(a.is_err() && b.is_err(), "{ptr}");
                continue;
            }
            let n = big(&original);
            let tampered = [
                (n.clone() + 1u32).to_string(),       // a different value
                (n.clone() + &modulus_q).to_string(), // same value mod q, not canonical
                format!("0{original}"),               // leading zero
                format!("-{original}"),
                format!("0x{}", n.to_str_radix(16)),
                String::new(),
            ];
            for s in tampered {
                let mut t = docs[which].clone();
                *t.pointer_mut(&ptr).unwrap() = Value::String(s.clone());
                let mut d = docs;
                d[which] = &t;
                let (a, b) = verify_both(d);
                assert_ne!(a, Ok(true), "independent parser accepted {ptr} = {s}");
                assert_ne!(b, Ok(true), "library accepted {ptr} = {s}");
            }
        }
    }

    // Structural damage.
    let mut t = f.vk.clone();
    t["nPublic"] = serde_json::json!(3);
    assert!(lib_verify(&t, &f.proof, &f.public).is_err());
    assert!(ind_verify(&t, &f.proof, &f.public).is_err());
    let mut t = f.vk.clone();
    t["IC"].as_array_mut().unwrap().pop();
    assert!(lib_verify(&t, &f.proof, &f.public).is_err());
    let mut t = f.proof.clone();
    t["pi_a"] = serde_json::json!([1, 2, 1]);
    assert!(lib_verify(&f.vk, &t, &f.public).is_err());
    let mut t = f.proof.clone();
    t["pi_b"].as_array_mut().unwrap().pop();
    assert!(lib_verify(&f.vk, &t, &f.public).is_err());
    let mut t = f.proof.clone();
    t.as_object_mut().unwrap().remove("pi_c");
    assert!(lib_verify(&f.vk, &t, &f.public).is_err());
    let mut t = f.public.clone();
    t.as_array_mut().unwrap().pop();
    assert!(lib_verify(&f.vk, &f.proof, &t).is_err());
    assert!(ind_verify(&f.vk, &f.proof, &t).is_err());
    // The scalar modulus itself is not a public input.
    let mut t = f.public.clone();
    t[0] = Value::String(R.into());
    assert!(lib_verify(&f.vk, &f.proof, &t).is_err());
    // Garbage files.
    let dir = TempDir::new("garbage");
    for (name, body) in [("a.json", "{"), ("b.json", "[]"), ("c.json", "null"), ("d.json", "\u{0}")] {
        std::fs::write(dir.path(name), body).unwrap();
        assert!(snarkjs::read_verification_key_json(dir.path(name)).is_err());
        assert!(snarkjs::read_proof_json(dir.path(name)).is_err());
    }
    assert!(snarkjs::read_public_json(dir.path("c.json")).is_err());
    assert_eq!(snarkjs::read_public_json(dir.path("b.json")).unwrap(), Vec::<Fr>::new());
}

#[test]
fn evm_calldata_matches_snarkjs_conventions() {
    let (pk, m) = setup_toy();
    let (_, z) = qap::synthesize_for_proving(Toy::new(8, 3)).unwrap();
    let proof = qap::prove_single_random(&pk, &m, &z, &mut rng(22)).unwrap();
    let public = m.public_inputs(&z).unwrap();
    let json = serde_json::to_value(snarkjs::proof_to_snarkjs(&proof)).unwrap();

    let hex = |v: &Value| format!("\"0x{:0>64}\"", big(v.as_str().unwrap()).to_str_radix(16));
    let expected = format!(
        "[{}, {}],[[{}, {}],[{}, {}]],[{}, {}],[{}]",
        hex(&json["pi_a"][0]),
        hex(&json["pi_a"][1]),
        hex(&json["pi_b"][0][1]),
        hex(&json["pi_b"][0][0]),
        hex(&json["pi_b"][1][1]),
        hex(&json["pi_b"][1][0]),
        hex(&json["pi_c"][0]),
        hex(&json["pi_c"][1]),
        public.iter().map(|x| hex(&Value::String(x.to_string()))).collect::<Vec<_>>().join(",")
    );
    assert_eq!(snarkjs::solidity_calldata(&proof, public), expected);

    let evm = EvmProof::new(&proof, public);
    let abi = evm.abi_encode_args();
    assert_eq!(abi.len(), 32 * (8 + public.len()));
    // Word k of the ABI encoding is the k-th number of the calldata string.
    let numbers: Vec<BigUint> = expected
        .split('"')
        .filter(|s| s.starts_with("0x"))
        .map(|s| BigUint::parse_bytes(&s.as_bytes()[2..], 16).unwrap())
        .collect();
    assert_eq!(numbers.len(), 8 + public.len());
    for (k, n) in numbers.iter().enumerate() {
        assert_eq!(&BigUint::from_bytes_be(&abi[32 * k..32 * (k + 1)]), n, "word {k}");
    }
    // b is [[x.c1, x.c0], [y.c1, y.c0]].
    let (bx, by) = proof.b.xy().unwrap();
    assert_eq!(BigUint::from_bytes_be(&evm.proof[2]), BigUint::from(bx.c1.into_bigint()));
    assert_eq!(BigUint::from_bytes_be(&evm.proof[5]), BigUint::from(by.c0.into_bigint()));
}
