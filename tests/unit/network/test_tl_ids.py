"""Constructor ids: docs/protocol.md's tables (§3.1, §3.3, Appendix A) against the schema's ids."""

from __future__ import annotations

import pytest

from app.network.tl import SCHEMA, TLError, constructor_id
from app.network.tl.schema import tl_crc

# Appendix A of docs/protocol.md: (combinator, id, kind, result type).
APPENDIX_A: list[tuple[str, int, str, str]] = [
    ("boolFalse", 0xBC799737, "constructor", "Bool"),
    ("boolTrue", 0x997275B5, "constructor", "Bool"),
    ("bytes", 0x184614D1, "constructor", "Bytes"),
    (
        "client.authorizationWithProxyFailed",
        0x60551C96,
        "constructor",
        "client.AuthorizationWithProxy",
    ),
    (
        "client.authorizationWithProxySuccess",
        0x75D5AC34,
        "constructor",
        "client.AuthorizationWithProxy",
    ),
    ("client.authorizeWithProxyLong", 0xD3474303, "function", "client.AuthorizationWithProxy"),
    ("client.authorizeWithProxyShort", 0x6C276723, "function", "client.AuthorizationWithProxy"),
    ("client.connectToProxy", 0xFF5FA0F4, "function", "client.ConnectedToProxy"),
    ("client.connectedToProxy", 0x95317AD1, "constructor", "client.ConnectedToProxy"),
    ("client.getWorkerTypes", 0x7F062BDB, "function", "client.WorkerTypes"),
    ("client.getWorkerTypesV2", 0xB2133D72, "function", "client.WorkerTypesV2"),
    ("client.params", 0x40FDCA64, "constructor", "client.Params"),
    ("client.paymentStatus", 0xAA8A0ECC, "constructor", "client.PaymentStatus"),
    ("client.proxyConnectionAuthLong", 0x417BF016, "constructor", "client.ProxyConnectionAuth"),
    ("client.proxyConnectionAuthShort", 0xD6FFC5AF, "constructor", "client.ProxyConnectionAuth"),
    ("client.queryAnswer", 0x9B943922, "constructor", "client.QueryAnswer"),
    ("client.queryAnswerError", 0x6D60569A, "constructor", "client.QueryAnswer"),
    ("client.queryAnswerErrorEx", 0x072562A8, "constructor", "client.QueryAnswerEx"),
    ("client.queryAnswerEx", 0xCD524720, "constructor", "client.QueryAnswerEx"),
    ("client.queryAnswerPart", 0xB765DE4C, "constructor", "client.QueryAnswerPart"),
    ("client.queryAnswerPartError", 0xD790A022, "constructor", "client.QueryAnswerPart"),
    ("client.queryAnswerPartEx", 0xC07BFAEC, "constructor", "client.QueryAnswerEx"),
    ("client.queryFinalInfo", 0x69A452F0, "constructor", "client.QueryFinalInfo"),
    ("client.refund", 0x83AABEAD, "constructor", "client.Refund"),
    ("client.refundRejected", 0xCF9D9957, "constructor", "client.Refund"),
    ("client.requestRefund", 0x238D863D, "function", "client.Refund"),
    ("client.runQuery", 0xBC748F32, "function", "client.QueryAnswer"),
    ("client.runQueryEx", 0xF54CB74B, "function", "client.QueryAnswerEx"),
    ("client.updatePaymentStatus", 0x9ED1C697, "function", "client.PaymentStatus"),
    ("client.workerInstanceV2", 0x3EA93D00, "constructor", "client.WorkerInstanceV2"),
    ("client.workerType", 0x8210E21C, "constructor", "client.WorkerType"),
    ("client.workerTypeV2", 0xB27D8197, "constructor", "client.WorkerTypeV2"),
    ("client.workerTypes", 0xF64E0E01, "constructor", "client.WorkerTypes"),
    ("client.workerTypesV2", 0x0CF0DC67, "constructor", "client.WorkerTypesV2"),
    ("clientRunner.config", 0xAF0BD51F, "constructor", "clientRunner.Config"),
    ("double", 0x2210C154, "constructor", "Double"),
    ("function", 0x7ACBC197, "constructor", "Function"),
    ("http.header", 0x8E9BE511, "constructor", "http.Header"),
    ("http.request", 0x47492DE5, "function", "http.Response"),
    ("http.response", 0x1CD0C42B, "constructor", "http.Response"),
    ("int", 0xA8509BDA, "constructor", "Int"),
    ("int128", 0x84CCF7B7, "constructor", "Int128"),
    ("int256", 0x7BEDEB5B, "constructor", "Int256"),
    ("keyManager.getProxyPrivateKeys", 0x47A9C2DE, "function", "keyManager.PrivateKeys"),
    ("keyManager.getWorkerPrivateKeys", 0x2A26EFF5, "function", "keyManager.PrivateKeys"),
    ("keyManager.privateKey", 0x60F4F8E7, "constructor", "keyManager.PrivateKey"),
    ("keyManager.privateKeys", 0x0ED66CE5, "constructor", "keyManager.PrivateKeys"),
    ("keyManagerDb.configEmpty", 0xD3FC2385, "constructor", "keyManagerDb.Config"),
    ("keyManagerDb.configV1", 0x6D2817AC, "constructor", "keyManagerDb.Config"),
    ("keyManagerDb.key", 0x4D0A1E17, "constructor", "keyManagerDb.Key"),
    ("keyStorageRunner.config", 0xD7874E40, "constructor", "keyStorageRunner.Config"),
    ("long", 0x22076CBA, "constructor", "Long"),
    ("object", 0x29704CA0, "constructor", "Object"),
    ("proxy.clientRequestPayment", 0xC6BCF127, "constructor", "proxy.WorkerRequestPayment"),
    ("proxy.params", 0xD5C5609F, "constructor", "proxy.Params"),
    ("proxy.queryAnswer", 0x37E5F725, "constructor", "proxy.QueryAnswer"),
    ("proxy.queryAnswerError", 0x669D014E, "constructor", "proxy.QueryAnswer"),
    ("proxy.queryAnswerErrorEx", 0x8F7FB0A7, "constructor", "proxy.QueryAnswerEx"),
    ("proxy.queryAnswerEx", 0x1CE574E8, "constructor", "proxy.QueryAnswerEx"),
    ("proxy.queryAnswerPart", 0x72EB00EE, "constructor", "proxy.QueryAnswerPart"),
    ("proxy.queryAnswerPartError", 0x940E1168, "constructor", "proxy.QueryAnswerPart"),
    ("proxy.queryAnswerPartEx", 0x6D85B50F, "constructor", "proxy.QueryAnswerEx"),
    ("proxy.queryFinalInfo", 0xE794E6FC, "constructor", "proxy.QueryFinalInfo"),
    ("proxy.runQuery", 0x47182416, "function", "proxy.QueryAnswer"),
    ("proxy.runQueryEx", 0xC805E7E2, "function", "proxy.QueryAnswer"),
    ("proxy.signedPayment", 0x02998182, "constructor", "proxy.SignedPayment"),
    ("proxy.signedPaymentEmpty", 0xB347CE64, "constructor", "proxy.SignedPayment"),
    ("proxy.workerRequestPayment", 0x1436C0D5, "constructor", "proxy.WorkerRequestPayment"),
    ("proxyDb.clientInfo", 0x6CFEAA21, "constructor", "proxyDb.ClientInfo"),
    ("proxyDb.clientInfoV2", 0x3078C9BF, "constructor", "proxyDb.ClientInfo"),
    ("proxyDb.configEmpty", 0x43DC40B4, "constructor", "proxyDb.Config"),
    ("proxyDb.configV4", 0xBDE43703, "constructor", "proxyDb.Config"),
    ("proxyDb.configV4Disabled", 0xAD2CFB4A, "constructor", "proxyDb.Config"),
    ("proxyDb.oldClient", 0x2FAE7B42, "constructor", "proxyDb.OldClient"),
    ("proxyDb.oldInstance", 0xA8C9E178, "constructor", "proxyDb.OldInstance"),
    ("proxyDb.oldWorker", 0xF04156A0, "constructor", "proxyDb.OldWorker"),
    (
        "proxyDb.pendingBlockchainSeqnoCommit",
        0x525B14A9,
        "constructor",
        "proxyDb.PendingBlockchainSeqnoCommit",
    ),
    ("proxyDb.workerInfo", 0x2517B38F, "constructor", "proxyDb.WorkerInfo"),
    ("proxyRunner.config", 0x5BF5E272, "constructor", "proxyRunner.Config"),
    ("rootConfig.configV5", 0x5E84869B, "constructor", "rootConfig.Config"),
    ("rootConfig.pseudo", 0x87A976CC, "constructor", "rootConfig.Config"),
    ("rootConfig.registeredProxy", 0x9F4E446A, "constructor", "rootConfig.RegisteredProxy"),
    ("string", 0xB5286E24, "constructor", "String"),
    ("tcp.connect", 0xA57C4261, "constructor", "tcp.Packet"),
    ("tcp.connected", 0x636D41D6, "constructor", "tcp.Packet"),
    ("tcp.packet", 0x9C17BAF8, "constructor", "tcp.Packet"),
    ("tcp.ping", 0xBBE9627C, "constructor", "tcp.Packet"),
    ("tcp.pong", 0x0BD4302C, "constructor", "tcp.Packet"),
    ("tcp.query", 0x3AF51908, "constructor", "tcp.Packet"),
    ("tcp.queryAnswer", 0xC048C311, "constructor", "tcp.Packet"),
    ("tcp.queryError", 0x4CD2F602, "constructor", "tcp.Packet"),
    ("test.answer", 0x0D4FCDB6, "constructor", "test.Answer"),
    ("test.query", 0x394E9143, "function", "test.Answer"),
    ("tokensUsed", 0x70C5B15C, "constructor", "TokensUsed"),
    ("ton.blockIdExt", 0xBC3F6DA5, "constructor", "ton.BlockIdExt"),
    ("true", 0x3FEDD339, "constructor", "True"),
    ("vector", 0x1CB5C415, "constructor", "Vector"),
    (
        "worker.compareBalanceWithProxy",
        0xDB386501,
        "function",
        "worker.CompareBalanceWithProxyResult",
    ),
    (
        "worker.compareBalanceWithProxyResult",
        0x9054C411,
        "constructor",
        "worker.CompareBalanceWithProxyResult",
    ),
    ("worker.connectToProxy", 0xCC484C5D, "function", "worker.ConnectedToProxy"),
    ("worker.connectedToProxy", 0x66BC82EE, "constructor", "worker.ConnectedToProxy"),
    ("worker.enabledDisabled", 0xB3B71039, "constructor", "worker.EnabledDisabled"),
    (
        "worker.extendedCompareBalanceWithProxy",
        0xF8DD9914,
        "function",
        "worker.ExtendedCompareBalanceWithProxyResult",
    ),
    (
        "worker.extendedCompareBalanceWithProxyResult",
        0x0C10973E,
        "constructor",
        "worker.ExtendedCompareBalanceWithProxyResult",
    ),
    ("worker.newCoefficient", 0x6AF092B0, "constructor", "worker.NewCoefficient"),
    ("worker.params", 0x869C73ED, "constructor", "worker.Params"),
    ("worker.paymentStatus", 0xA88BD701, "constructor", "worker.PaymentStatus"),
    ("worker.proxyHandshakeComplete", 0xF843B066, "function", "worker.HandshakeCompleted"),
    ("worker.proxyHandshakeCompleted", 0x3AD9B886, "constructor", "worker.HandshakeCompleted"),
    ("worker.updatePaymentStatus", 0xDC70A524, "function", "worker.PaymentStatus"),
    ("workerRunner.config", 0x870DB56D, "constructor", "workerRunner.Config"),
]

# docs/protocol.md §3.3: every combinator a worker sends or receives.
WORKER_TABLE: list[tuple[str, int]] = [
    ("tcp.connect", 0xA57C4261),
    ("tcp.connected", 0x636D41D6),
    ("tcp.ping", 0xBBE9627C),
    ("tcp.pong", 0x0BD4302C),
    ("tcp.packet", 0x9C17BAF8),
    ("tcp.query", 0x3AF51908),
    ("tcp.queryAnswer", 0xC048C311),
    ("tcp.queryError", 0x4CD2F602),
    ("worker.params", 0x869C73ED),
    ("worker.connectToProxy", 0xCC484C5D),
    ("worker.connectedToProxy", 0x66BC82EE),
    ("proxy.params", 0xD5C5609F),
    ("worker.compareBalanceWithProxy", 0xDB386501),
    ("worker.compareBalanceWithProxyResult", 0x9054C411),
    ("worker.extendedCompareBalanceWithProxy", 0xF8DD9914),
    ("worker.extendedCompareBalanceWithProxyResult", 0x0C10973E),
    ("worker.proxyHandshakeComplete", 0xF843B066),
    ("worker.proxyHandshakeCompleted", 0x3AD9B886),
    ("worker.updatePaymentStatus", 0xDC70A524),
    ("worker.paymentStatus", 0xA88BD701),
    ("worker.enabledDisabled", 0xB3B71039),
    ("worker.newCoefficient", 0x6AF092B0),
    ("proxy.runQuery", 0x47182416),
    ("proxy.runQueryEx", 0xC805E7E2),
    ("proxy.queryAnswerEx", 0x1CE574E8),
    ("proxy.queryAnswerPartEx", 0x6D85B50F),
    ("proxy.queryAnswerErrorEx", 0x8F7FB0A7),
    ("proxy.queryFinalInfo", 0xE794E6FC),
    ("proxy.queryAnswer", 0x37E5F725),
    ("proxy.queryAnswerPart", 0x72EB00EE),
    ("proxy.queryAnswerError", 0x669D014E),
    ("proxy.queryAnswerPartError", 0x940E1168),
    ("tokensUsed", 0x70C5B15C),
    ("proxy.signedPayment", 0x02998182),
    ("proxy.signedPaymentEmpty", 0xB347CE64),
    ("proxy.workerRequestPayment", 0x1436C0D5),
    ("http.request", 0x47492DE5),
    ("http.response", 0x1CD0C42B),
    ("http.header", 0x8E9BE511),
]

# Namespaces the bundled schema must cover completely; the rest of cocoon_api.tl (client.*,
# proxyDb.*, keyManager*, runner configs, ...) never crosses a worker link.
IN_SCOPE_PREFIXES = ("tcp.", "worker.", "proxy.", "http.", "tokensUsed", "boolTrue", "boolFalse")


@pytest.mark.parametrize(("name", "expected", "kind", "result"), APPENDIX_A, ids=lambda v: str(v))
def test_appendix_a_ids(name: str, expected: int, kind: str, result: str) -> None:
    in_scope = name.startswith(IN_SCOPE_PREFIXES)
    if name not in SCHEMA.by_name:
        assert not in_scope, f"{name} belongs in the bundled schema"
        return
    comb = SCHEMA.by_name[name]
    assert comb.id == expected
    assert comb.is_function == (kind == "function")
    assert comb.result_type == result


def test_every_in_scope_combinator_of_appendix_a_is_bundled_and_nothing_else() -> None:
    in_scope = {name for name, *_ in APPENDIX_A if name.startswith(IN_SCOPE_PREFIXES)}
    assert set(SCHEMA.by_name) == in_scope


@pytest.mark.parametrize(("name", "expected"), WORKER_TABLE, ids=lambda v: str(v))
def test_worker_table_ids(name: str, expected: int) -> None:
    assert constructor_id(name) == expected


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ("tcp.connect id:long = tcp.Packet", 0xA57C4261),
        (
            "http.request method:string url:string http_version:string "
            "headers:(vector http.header) payload:bytes = http.Response",
            0x47492DE5,
        ),
        ("vector {t:Type} # [ t ] = Vector t", 0x1CB5C415),
        ("tcp.ping random_id:long = tcp.Pong", 0x4D082B9A),
        ("liteServer.query data:bytes = Object", 0x798C06DF),
        ("boolTrue = Bool", 0x997275B5),
        ("boolFalse = Bool;", 0xBC799737),
    ],
)
def test_crc_rule_reproduces_the_spec_examples(declaration: str, expected: int) -> None:
    assert tl_crc(declaration) == expected


@pytest.mark.parametrize(
    ("declaration", "crc", "explicit"),
    [
        (
            "worker.params#869c73ed flags:# worker_owner_address:string model:string "
            "coefficient:int is_test:flags.0?Bool proxy_cnt:flags.0?int "
            "max_active_requests:flags.0?int min_proto_version:flags.1?int "
            "max_proto_version:flags.1?int = worker.Params",
            0x1E0A3348,
            0x869C73ED,
        ),
        (
            "proxy.params#d5c5609f flags:# proxy_public_key:int256 proxy_owner_address:string "
            "proxy_sc_address:string is_test:flags.0?Bool proto_version:flags.1?int = proxy.Params",
            0x255D81FA,
            0xD5C5609F,
        ),
    ],
)
def test_explicit_ids_win_over_the_crc(declaration: str, crc: int, explicit: int) -> None:
    assert tl_crc(declaration) == crc
    name = declaration.split("#", 1)[0]
    assert constructor_id(name) == explicit != crc


def test_whitespace_and_line_breaks_do_not_change_an_id() -> None:
    wrapped = "tcp.queryError\n   id:long\tcode:int   message:string\n = tcp.Packet ;"
    assert tl_crc(wrapped) == constructor_id("tcp.queryError") == 0x4CD2F602


def test_unknown_combinator_name_is_a_tl_error() -> None:
    with pytest.raises(TLError, match="unknown TL combinator"):
        constructor_id("tcp.nonsense")
