"""Categorisation layer 5 as a Dagster asset: train on what layers 1-3 decided, predict the rest."""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from pipelines.transform.translator import CATEGORY_PREDICTIONS
from resources.category_model import (
    DEFAULT_MIN_CONFIDENCE,
    UNCATEGORISED,
    read_statement_rows,
    replace_predictions,
    train_category_model,
)
from resources.warehouse.resource import WarehouseResource


class CategoryModelConfig(dg.Config):
    min_confidence: float = Field(
        default=DEFAULT_MIN_CONFIDENCE,
        ge=0.0,
        le=1.0,
        description="Predictions with a lower calibrated probability are written as 'uncategorised'.",
    )


@dg.asset(
    key=CATEGORY_PREDICTIONS,
    # Both views are read: the layers 1-4 decision per row, and the row's statement text.
    deps=[dg.AssetKey("int_transactions_rule_categorised"), dg.AssetKey("int_transactions_unioned")],
    group_name="intermediate",
    kinds={"python", "scikit-learn", "postgres"},
    automation_condition=dg.AutomationCondition.eager(),
)
def category_predictions(
    context: dg.AssetExecutionContext, config: CategoryModelConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The learned categoriser (layer 5): a TF-IDF (character n-grams of the normalised merchant
    and statement text) + logistic-regression model with calibrated probabilities, trained on the
    rows an override, a rule or an MCC decided, predicts every row no layer 1-4 decided and
    replaces ops.category_predictions with its answers in one transaction. Below min_confidence
    a row is 'uncategorised'. With too few labelled rows or one category only it trains nothing
    and writes no predictions (the metadata says why)."""
    with warehouse.connect() as conn:
        labelled, undecided = read_statement_rows(conn)
    outcome = train_category_model(labelled)
    metadata: dict[str, object] = {
        "labelled_rows": outcome.labelled_rows,
        "undecided_rows": len(undecided),
        "rows_per_category": dg.MetadataValue.json(outcome.rows_per_category),
        "categories_too_small_to_learn": dg.MetadataValue.json(outcome.dropped_categories),
        "min_confidence": config.min_confidence,
    }
    model = outcome.model
    predictions = [] if model is None else model.predict(undecided, config.min_confidence)
    with warehouse.connect() as conn:
        replace_predictions(
            conn,
            predictions,
            model_version="none" if model is None else model.version,
            trained_rows=0 if model is None else model.trained_rows,
            predicted_at=datetime.now(UTC),
        )
    if model is None:
        context.log.warning(f"No category model trained: {outcome.reason}; no predictions written.")
        return dg.MaterializeResult(metadata={**metadata, "trained": False, "reason": outcome.reason})

    below = sum(1 for p in predictions if p.category == UNCATEGORISED)
    holdout_coverage, holdout_precision = model.holdout_at(config.min_confidence)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "trained": True,
            "model_version": model.version,
            "training_rows": model.trained_rows,
            "categories": dg.MetadataValue.json(model.categories),
            # Accuracy on merchants held out of training: the rows the model is asked about are
            # by definition ones no rule knows, so this is the figure to expect, not the
            # (near-perfect) accuracy on rows like those it learned from.
            "holdout_rows": model.holdout_rows,
            "holdout_accuracy": model.holdout_accuracy,
            "holdout_share_above_threshold": holdout_coverage,
            "holdout_accuracy_above_threshold": holdout_precision,
            "predicted_rows": len(predictions),
            "categorised_rows": len(predictions) - below,
            "share_below_threshold": round(below / len(predictions), 4) if predictions else None,
        }
    )
