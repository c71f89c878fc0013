"""A model-based stateful test of the link operation (a hypothesis ``RuleBasedStateMachine``).

The machine keeps a model of who owns which account and sends link requests with any creator,
any account and any key. The model predicts the answer; the target must give exactly that
(where the document allows two answers, either). Invariants re-check ownership after every
step, so a server that answers a conflict with a proper 409 but moves the account anyway, or
answers a later re-link with 201, fails although each single response looks right.

Every request goes through :class:`~conformance._client.ApiClient`, so the project's rules judge
these exchanges too. A failure is reported as the shrunk list of HTTP calls that shows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import hypothesis
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from conformance._client import ApiClient
from conformance._config import Principal
from conformance._exchange import Exchange
from conformance._paths import link_path
from conformance._rules import RuleViolation

OWN, OTHER = "own", "other"
MISSING_NAMESPACE = uuid.UUID("6f1d3c52-0b1e-4c38-9a57-3f6de2a1c0aa")
#: The organization each key acts for; keys that do not authenticate act for none.
KEY_ORG: dict[Principal, str | None] = {
    Principal.FULL: OWN,
    Principal.READONLY: OWN,
    Principal.INACTIVE: OWN,
    Principal.OTHER_ORG: OTHER,
    Principal.INVALID: None,
    Principal.NONE: None,
}
#: Every key the machine tries; the write key first, so failures shrink towards it.
KEYS_TRIED: tuple[Principal, ...] = (
    Principal.FULL,
    Principal.OTHER_ORG,
    Principal.READONLY,
    Principal.INACTIVE,
    Principal.INVALID,
    Principal.NONE,
)
#: The pool: role name -> organization the resource lives in (None: it exists nowhere).
CREATOR_ROLES: dict[str, str | None] = {
    "own-creator-a": OWN,
    "own-creator-b": OWN,
    "other-org-creator": OTHER,
    "missing-creator": None,
}
ACCOUNT_ROLES: dict[str, str | None] = {
    "own-account-1": OWN,
    "own-account-2": OWN,
    "other-org-account": OTHER,
    "missing-account": None,
}

#: Requirement id of each predicted outcome, so a mismatch names what it breaks.
REQUIREMENT_OF: dict[int, str] = {
    201: "LINK-FIRST-201",
    200: "LINK-RELINK-200",
    409: "LINK-CONFLICT-409",
    404: "LINK-NOT-FOUND-404",
    401: "AUTH-INVALID-401",
}


@dataclass
class Prediction:
    """The answers the document allows, and what the model becomes if the link happens."""

    statuses: frozenset[int]
    requirement: str
    new_owner: str | None = None


@dataclass
class Ownership:
    """The model: which creator (role) owns each account (role)."""

    owner: dict[str, str] = field(default_factory=dict)

    def predict(self, creator: str, account: str, principal: Principal) -> Prediction:
        org = KEY_ORG[principal]
        if principal in {Principal.NONE, Principal.INVALID}:
            return Prediction(frozenset({401}), "AUTH-INVALID-401")
        if principal is Principal.INACTIVE:
            return Prediction(frozenset({403}), "AUTH-INACTIVE-403")
        visible = CREATOR_ROLES[creator] == org and ACCOUNT_ROLES[account] == org
        if principal is Principal.READONLY:
            # The document orders neither check first: a missing resource may be reported
            # before the missing scope, so a read-only key may get 404 where a link would.
            return Prediction(frozenset({403} if visible else {403, 404}), "AUTH-SCOPE-403")
        if not visible:
            requirement = "LINK-NOT-FOUND-404"
            if OTHER in {CREATOR_ROLES[creator], ACCOUNT_ROLES[account]}:
                requirement = "LINK-OTHER-ORG-404"
            return Prediction(frozenset({404}), requirement)
        current = self.owner.get(account)
        if current is None:
            return Prediction(frozenset({201}), "LINK-FIRST-201", new_owner=creator)
        if current == creator:
            return Prediction(frozenset({200}), "LINK-RELINK-200")
        return Prediction(frozenset({409}), "LINK-CONFLICT-UNCHANGED")


class ModelMismatch(AssertionError):
    """The target answered differently from what the model of the document predicts. Names
    the exchange and the statuses predicted, so ``replay`` judges that step again."""

    def __init__(self, message: str, exchange: Exchange, expected_status: list[int]) -> None:
        super().__init__(message)
        self.exchange = exchange
        self.expected_status = expected_status


class LinkMachine(RuleBasedStateMachine):
    """Links any creator to any account with any key; the model says what must come back.

    Subclasses made by :func:`machine_for` bind the client, the keys available and a
    ``provision(kind, org, role)`` callable that gives each run its resources.
    """

    api: ApiClient
    provision: Callable[[str, str, str], str]
    principals: tuple[Principal, ...] = (Principal.FULL,)
    missing_ids_made = 0
    #: told when a run starts, so the test records only the last (the failing) run's exchanges
    on_run: Callable[[], None] = staticmethod(lambda: None)

    def __init__(self) -> None:
        super().__init__()
        self.on_run()
        self.ids: dict[str, str] = {}
        self.model = Ownership()
        self.calls: list[str] = []
        self.touched: set[str] = set()

    # -- HTTP ---------------------------------------------------------------------------

    def id_of(self, role: str) -> str:
        """The role's id in this run, asked for on first use: each run needs accounts the
        model knows nothing of, and short (shrunk) runs ask for little. A creator may be the
        same from run to run (the scenario gives the suite's link owners): linking never
        changes what a creator is, so only the accounts need to be new."""
        if role not in self.ids:
            kind = "creator" if role in CREATOR_ROLES else "account"
            org = CREATOR_ROLES.get(role) if kind == "creator" else ACCOUNT_ROLES.get(role)
            if org is None:
                self.ids[role] = self._missing_id(role)
            else:
                self.ids[role] = self.provision(kind, org, role)
        return self.ids[role]

    def _missing_id(self, role: str) -> str:
        """A UUID that exists nowhere, the same for the same run of the same seed."""
        type(self).missing_ids_made += 1
        return str(uuid.uuid5(MISSING_NAMESPACE, f"{role}-{type(self).missing_ids_made}"))

    def _link(self, creator: str, account: str, principal: Principal) -> Exchange:
        path = link_path(self.id_of(creator), self.id_of(account))
        try:
            exchange = self.api.put(path, principal=principal)
        except RuleViolation as exc:
            self._record(exc.exchange, creator, account)
            exc.add_note(self.call_list())
            raise
        self._record(exchange, creator, account)
        return exchange

    def _record(self, exchange: Exchange, creator: str, account: str) -> None:
        self.calls.append(
            f"PUT /creators/<{creator}>/accounts/<{account}> "
            f"[{exchange.principal.name}] -> {exchange.status}"
        )

    def call_list(self) -> str:
        numbered = [f"  {n}. {call}" for n, call in enumerate(self.calls, 1)]
        return "HTTP calls of this (shrunk) run:\n" + "\n".join(numbered)

    def _expect(self, exchange: Exchange, prediction: Prediction, why: str) -> None:
        if exchange.status not in prediction.statuses:
            wanted = " or ".join(str(s) for s in sorted(prediction.statuses))
            raise ModelMismatch(
                f"[{prediction.requirement}] {why}: expected HTTP {wanted}, got "
                f"{exchange.status}\n{self.call_list()}\n{exchange.evidence()}\n"
                f"reproduce the last call: {exchange.curl()}",
                exchange,
                sorted(prediction.statuses),
            )

    # -- rules ---------------------------------------------------------------------------

    @rule(
        creator=st.sampled_from(sorted(CREATOR_ROLES)),
        account=st.sampled_from(sorted(ACCOUNT_ROLES)),
        key=st.sampled_from(KEYS_TRIED),
    )
    def link(self, creator: str, account: str, key: Principal) -> None:
        # A key the configuration lacks is replaced by the write key, so runs stay comparable.
        principal = key if key in self.principals else Principal.FULL
        prediction = self.model.predict(creator, account, principal)
        exchange = self._link(creator, account, principal)
        self._expect(exchange, prediction, f"link {creator} -> {account} as {principal.name}")
        if prediction.new_owner is not None:
            self.model.owner[account] = prediction.new_owner
        self.touched.add(account)

    @invariant()
    def owners_still_own_their_accounts(self) -> None:
        """Whatever the last step did, the model's owner of each account it touched still
        re-links with 200: a refused link moved nothing, a re-link created nothing."""
        for account in sorted(self.touched):
            owner = self.model.owner.get(account)
            if owner is None:
                continue
            principal = Principal.FULL if ACCOUNT_ROLES[account] == OWN else Principal.OTHER_ORG
            if principal not in self.principals:
                continue
            exchange = self._link(owner, account, principal)
            prediction = Prediction(frozenset({200}), "LINK-CONFLICT-UNCHANGED")
            if exchange.status != 200 and exchange.status in {201, 409}:
                prediction.requirement = (
                    "LINK-RELINK-200" if exchange.status == 201 else "LINK-CONFLICT-UNCHANGED"
                )
            self._expect(exchange, prediction, f"{owner} re-checks its ownership of {account}")
        self.touched.clear()


def machine_for(
    api: ApiClient,
    provision: Callable[[str, str, str], str],
    principals: tuple[Principal, ...],
    seed: int,
    on_run: Callable[[], None] | None = None,
) -> type[LinkMachine]:
    """A LinkMachine bound to one target and seeded, so the same seed sends the same calls."""
    hooks: dict[str, object] = {"on_run": staticmethod(on_run)} if on_run is not None else {}
    bound = type(
        "LinkMachine",
        (LinkMachine,),
        {"api": api, "provision": staticmethod(provision), "principals": principals, **hooks},
    )
    return hypothesis.seed(seed)(bound)


def run_link_machine(machine: type[LinkMachine], max_examples: int, steps: int) -> None:
    """Run the machine; the example database stays off so a seed fixes the requests."""
    settings = hypothesis.settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        print_blob=False,
        # Every phase but `explain`, which re-runs the failing sequence many more times (each
        # run is real HTTP) only to list the source lines it covered.
        phases=[p for p in hypothesis.Phase if p is not hypothesis.Phase.explain],
    )
    run_state_machine_as_test(machine, settings=settings)
