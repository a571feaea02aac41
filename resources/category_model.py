"""Categorisation layer 5: a text classifier trained on the rows layers 1-3 decided.

The rows an override, a rule or an MCC categorised are the labels; the statement text (merchant
name, description, counterparty), normalised so that one merchant reads the same on every card
slip, and the direction of the money are the features: TF-IDF over character n-grams (they match
"TESCO STORES 4521" and "TESCO EXPRESS" without a tokeniser that knows either) into a logistic
regression whose probabilities are calibrated on merchants it did not see. A prediction whose
confidence is below the threshold is `uncategorised`: a guess the user would have to undo is
worse than no category.

Plain Python and scikit-learn; the Dagster asset (pipelines/transform/category_model.py) reads
and writes Postgres around it.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property

import numpy as np
import pandas as pd
import psycopg
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

# Bump when the features or the estimator change: every prediction row records it.
MODEL_VERSION = "tfidf-char-logreg-v1"
# The layers whose decisions are labels. The provider's classification (layer 4) is not one: it is
# coarse and often wrong about the merchant, and the model would learn its mistakes.
TRAINING_SOURCES = ("override", "rule", "mcc")
UNCATEGORISED = "uncategorised"
# Below this calibrated probability the row stays uncategorised. On the sandbox world
# (tests/test_category_model.py) 0.88 of the rows the model categorised at 0.5 were right with every
# rule in place, 0.82 with the rules naming its merchants hidden.
DEFAULT_MIN_CONFIDENCE = 0.5
# Fewer labelled rows than this, or fewer than two categories, and no model is trained at all.
MIN_TRAINING_ROWS = 30
# A category with fewer labelled rows is left out of training (named in the outcome's metadata).
MIN_ROWS_PER_CATEGORY = 3
# Calibration folds; folds never split one merchant, so the probabilities are those of a merchant
# the rules did not know, which is every row the model is asked about.
CALIBRATION_FOLDS = 3
# One merchant in HOLDOUT_BUCKETS is held out (by a hash of its normalised text, so the split is
# the same on every run and machine) to measure accuracy on merchants the model never saw.
HOLDOUT_BUCKETS = 5
RANDOM_STATE = 0

# Card-network and terminal boilerplate, not the merchant.
_CARD_PREFIXES = re.compile(
    r"\b(card payment to|card payment|card purchase|debit card purchase|debit card|contactless|"
    r"pos purchase|pos|visa|mastercard|maestro|apple pay|google pay|purchase at)\b"
)
# Separators merchants and banks put between name, city and reference.
_SEPARATORS = re.compile(r"[\s/*\\\-.,;:_@#+|()\[\]{}<>=\"]+")
# Trailing place names and country codes ("COSTA COFFEE BG", "KAUFLAND BULGARIA SOFIA", "LIDL GB"):
# the same merchant in another town is the same merchant.
_PLACE_SUFFIXES = frozenset(
    {
        # countries and their codes
        "gb", "uk", "ie", "fr", "de", "nl", "be", "es", "it", "pt", "at", "ch", "bg", "ro", "pl", "cz",
        "in", "us", "eu", "bulgaria", "romania", "india", "france", "germany", "netherlands",
        # cities the world's and the banks' statements name
        "london", "manchester", "birmingham", "leeds", "glasgow", "edinburgh", "bristol", "liverpool",
        "paris", "lyon", "berlin", "munich", "amsterdam", "rotterdam", "brussels", "madrid", "dublin",
        "sofia", "plovdiv", "varna", "bucharest", "cluj", "chennai", "mumbai", "delhi", "bangalore",
        "bengaluru", "hyderabad", "kolkata", "pune",
    }
)  # fmt: skip
_APOSTROPHES = re.compile(r"['\u2019`]")


def normalise_text(text: str | None) -> str:
    """Statement text reduced to what names the merchant: lowercase, no card boilerplate, no
    tokens holding digits (card numbers, references, store numbers, dates), no trailing city or
    country, no one-letter tokens. "CARD PAYMENT TO TESCO STORES 4521 LONDON" -> "tesco stores"."""
    text = _APOSTROPHES.sub("", (text or "").lower())
    text = _CARD_PREFIXES.sub(" ", text)
    tokens = [token for token in _SEPARATORS.split(text) if token and not any(c.isdigit() for c in token)]
    while len(tokens) > 1 and tokens[-1] in _PLACE_SUFFIXES:
        tokens.pop()
    return " ".join(token for token in tokens if len(token) > 1)


@dataclass(frozen=True)
class StatementRow:
    """One transaction as the model sees it; `category` is the label (None when unknown)."""

    transaction_key: str
    amount: Decimal
    merchant_name: str | None = None
    description: str | None = None
    counterparty_name: str | None = None
    category: str | None = None

    @cached_property
    def text(self) -> str:
        # Each field once, normalised; the merchant first (when a source names it, it is the cleanest).
        parts: list[str] = []
        for value in (self.merchant_name, self.description, self.counterparty_name):
            normalised = normalise_text(value)
            if normalised and normalised not in parts:
                parts.append(normalised)
        return " ".join(parts)

    @property
    def direction(self) -> str:
        return "out" if self.amount < 0 else "in"


@dataclass(frozen=True)
class Prediction:
    transaction_key: str
    category: str  # UNCATEGORISED when the confidence is below the threshold
    confidence: float  # calibrated probability of the model's best category, 0-1


@dataclass
class CategoryModel:
    """A trained classifier and what is known about it."""

    pipeline: Pipeline
    categories: list[str]
    trained_rows: int
    holdout_rows: int
    holdout_accuracy: float | None  # on merchants left out of training; None when none could be
    # Per held-out (text, direction): rows, whether the best category was right, its confidence.
    holdout: pd.DataFrame | None = None
    version: str = MODEL_VERSION

    def holdout_at(self, min_confidence: float) -> tuple[float | None, float | None]:
        """On the held-out merchants: the share of rows at or above `min_confidence` and the
        accuracy of those; (None, None) without a holdout."""
        if self.holdout is None or self.holdout.empty:
            return None, None
        above = self.holdout[self.holdout.confidence >= min_confidence]
        coverage = float(above.weight.sum() / self.holdout.weight.sum())
        accuracy = float(above.weight[above.right].sum() / above.weight.sum()) if not above.empty else None
        return round(coverage, 4), None if accuracy is None else round(accuracy, 4)

    def predict(self, rows: Sequence[StatementRow], min_confidence: float) -> list[Prediction]:
        """The best category per row and its confidence; below `min_confidence` -> uncategorised.
        Rows with the same text and direction get the same answer, computed once."""
        if not rows:
            return []
        frame = _features(rows).drop_duplicates().reset_index(drop=True)
        with threadpool_limits(limits=1):
            probabilities = self.pipeline.predict_proba(frame)
        best = probabilities.argmax(axis=1)
        classes = self.pipeline.classes_
        answers = {
            (text, direction): (str(classes[index]), float(probabilities[i, index]))
            for i, (text, direction, index) in enumerate(zip(frame.text, frame.direction, best, strict=True))
        }
        predictions = []
        for row in rows:
            category, confidence = answers[(row.text, row.direction)]
            predictions.append(
                Prediction(
                    transaction_key=row.transaction_key,
                    category=category if confidence >= min_confidence else UNCATEGORISED,
                    confidence=round(confidence, 4),
                )
            )
        return predictions


@dataclass
class TrainingOutcome:
    """A model, or the reason there is none; either way what the training data looked like."""

    model: CategoryModel | None
    reason: str | None
    labelled_rows: int
    rows_per_category: dict[str, int]
    dropped_categories: dict[str, int] = field(default_factory=dict)  # too few rows to learn


def train_category_model(rows: Iterable[StatementRow], random_state: int = RANDOM_STATE) -> TrainingOutcome:
    """Train on labelled rows. Too little data, or a single category, gives no model and a reason
    (never an exception): a young warehouse simply has no layer 5 yet."""
    # One BLAS thread: the matrices are small, and on a busy 2-core machine a thread pool per
    # fit made training 10x slower (threads spinning against dbt and the webserver).
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # StratifiedGroupKFold warns when a category has fewer merchants than folds; the folds
        # are then uneven, which calibration tolerates (a fold without the category gives it 0).
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return _train(list(rows), random_state)


def _train(rows: list[StatementRow], random_state: int) -> TrainingOutcome:
    labelled = [row for row in rows if row.category and row.category != UNCATEGORISED]
    per_category = Counter(row.category for row in labelled)
    dropped = {c: n for c, n in sorted(per_category.items()) if n < MIN_ROWS_PER_CATEGORY}
    kept = [row for row in labelled if row.category not in dropped]
    outcome = TrainingOutcome(
        model=None,
        reason=None,
        labelled_rows=len(labelled),
        rows_per_category=dict(sorted(per_category.items())),
        dropped_categories=dropped,
    )
    categories = sorted({row.category for row in kept})
    if len(kept) < MIN_TRAINING_ROWS:
        outcome.reason = f"{len(kept)} labelled rows, fewer than the {MIN_TRAINING_ROWS} needed"
        return outcome
    if len(categories) < 2:
        outcome.reason = f"one category only ({', '.join(categories)}): nothing to tell apart"
        return outcome

    data = _weighted(kept)
    splits = _calibration_splits(data, random_state)
    if splits is None:
        outcome.reason = f"too few distinct merchants to calibrate ({data.group.nunique()} over {len(categories)} categories)"
        return outcome

    holdout = _holdout(data, random_state)
    pipeline = _fit(data, splits, random_state)
    # The same labelled data gives the same model (fixed random_state), hence the same version.
    fingerprint = hashlib.sha256(data.to_csv(index=False).encode()).hexdigest()[:12]
    outcome.model = CategoryModel(
        pipeline=pipeline,
        categories=[str(c) for c in pipeline.classes_],
        trained_rows=len(kept),
        holdout_rows=0 if holdout is None else int(holdout.weight.sum()),
        holdout_accuracy=None
        if holdout is None
        else round(float(holdout.weight[holdout.right].sum() / holdout.weight.sum()), 4),
        holdout=holdout,
        version=f"{MODEL_VERSION}+{fingerprint}",
    )
    return outcome


def _features(rows: Sequence[StatementRow]) -> pd.DataFrame:
    return pd.DataFrame({"text": [row.text for row in rows], "direction": [row.direction for row in rows]})


def _weighted(rows: Sequence[StatementRow]) -> pd.DataFrame:
    """Distinct (text, direction, category) with their row count as the weight: a merchant seen a
    thousand times costs one row to train on, and the row order never matters."""
    frame = _features(rows).assign(category=[row.category for row in rows])
    grouped = frame.groupby(["text", "direction", "category"], sort=True).size().reset_index(name="weight")
    # The merchant is the text: calibration folds and the holdout never split one.
    grouped["group"] = grouped["text"]
    return grouped


def _pipeline(random_state: int, cv: object) -> Pipeline:
    features = ColumnTransformer(
        [
            (
                "text",
                # char_wb: n-grams inside word boundaries, robust to the spellings and truncations
                # of one merchant across banks ("SAINSBURYS S/MKTS", "Sainsbury's").
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
                "text",
            ),
            ("direction", OneHotEncoder(handle_unknown="ignore"), ["direction"]),
        ]
    )
    classifier = LogisticRegression(C=10.0, max_iter=5000, random_state=random_state)
    return Pipeline(
        [
            ("features", features),
            ("classifier", CalibratedClassifierCV(classifier, method="sigmoid", cv=cv)),
        ]
    )


def _calibration_splits(data: pd.DataFrame, random_state: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Folds by merchant, keeping only those whose training part holds two categories or more;
    None when fewer than two such folds exist."""
    if data.group.nunique() < CALIBRATION_FOLDS:
        return None
    folds = StratifiedGroupKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=random_state)
    try:
        splits = [
            (train, test)
            for train, test in folds.split(data, data.category, data.group)
            if data.category.iloc[train].nunique() >= 2
        ]
    except ValueError:
        # Every category has fewer distinct texts than there are folds.
        return None
    return splits if len(splits) >= 2 else None


def _fit(data: pd.DataFrame, splits: list, random_state: int) -> Pipeline:
    pipeline = _pipeline(random_state, splits)
    pipeline.fit(data[["text", "direction"]], data.category, classifier__sample_weight=data.weight.to_numpy())
    return pipeline


def _holdout(data: pd.DataFrame, random_state: int) -> pd.DataFrame | None:
    """A model trained without one merchant in HOLDOUT_BUCKETS, asked about those merchants: what
    to expect of rows no rule knows. None when no such split is possible."""
    bucket = np.array([zlib.crc32(group.encode()) % HOLDOUT_BUCKETS for group in data.group])
    train, test = data[bucket != 0].reset_index(drop=True), data[bucket == 0].reset_index(drop=True)
    if test.empty or train.category.nunique() < 2:
        return None
    splits = _calibration_splits(train, random_state)
    if splits is None:
        return None
    pipeline = _fit(train, splits, random_state)
    probabilities = pipeline.predict_proba(test[["text", "direction"]])
    predicted = pipeline.classes_[probabilities.argmax(axis=1)]
    return pd.DataFrame(
        {
            "weight": test.weight,
            "right": predicted == test.category.to_numpy(),
            "confidence": probabilities.max(axis=1),
        }
    )


# What the model reads: every row with its layers 1-4 decision (null source: undecided). The
# views are dbt's; reading them whole is the price of one model over the whole history.
STATEMENT_ROWS_SQL = """
select
    unioned.transaction_key,
    unioned.amount,
    unioned.merchant_name,
    unioned.description,
    unioned.counterparty_name,
    layers.category,
    layers.category_source
from intermediate.int_transactions_rule_categorised as layers
inner join intermediate.int_transactions_unioned as unioned
    on layers.transaction_key = unioned.transaction_key
order by unioned.transaction_key
"""


def read_statement_rows(conn: psycopg.Connection) -> tuple[list[StatementRow], list[StatementRow]]:
    """(labelled rows layers 1-3 decided, rows no layer 1-4 decided) from the warehouse.
    Rows the provider (layer 4) decided are neither: not trusted as labels, not predicted."""
    labelled, undecided = [], []
    for key, amount, merchant, description, counterparty, category, source in conn.execute(
        STATEMENT_ROWS_SQL
    ):
        if source in TRAINING_SOURCES:
            labelled.append(StatementRow(key, amount, merchant, description, counterparty, category))
        elif source is None:
            undecided.append(StatementRow(key, amount, merchant, description, counterparty))
    return labelled, undecided


def replace_predictions(
    conn: psycopg.Connection,
    predictions: Sequence[Prediction],
    model_version: str,
    trained_rows: int,
    predicted_at: datetime,
) -> None:
    """Replace every row of ops.category_predictions with `predictions`, in one transaction:
    readers see the previous model's answers or these, never a mix or an empty table."""
    with conn.transaction():
        # Two runs at once: the second waits for the first to commit, then its delete sees (and
        # replaces) the first one's rows instead of colliding with them on the primary key.
        conn.execute("select pg_advisory_xact_lock(hashtextextended('ops.category_predictions', 0))")
        conn.execute("delete from ops.category_predictions")
        with conn.cursor().copy(
            "copy ops.category_predictions"
            " (transaction_key, category, confidence, model_version, trained_rows, predicted_at)"
            " from stdin"
        ) as copy:
            for prediction in predictions:
                copy.write_row(
                    (
                        prediction.transaction_key,
                        prediction.category,
                        Decimal(str(prediction.confidence)),
                        model_version,
                        trained_rows,
                        predicted_at,
                    )
                )
