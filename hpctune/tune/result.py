"""Ray's ``ray.tune.result``: the names of the metrics every result carries, and of the files.

Use them instead of the strings (``result[TRAINING_ITERATION]``); the worker fills the
auto-filled ones in (``hpctune.core.metrics.AUTO_METRICS`` lists them all). A class
trainable's ``step()`` returning ``{SHOULD_CHECKPOINT: True}`` asks for a checkpoint.
"""

import os

from hpctune.config import DEFAULT_STORAGE
from hpctune.storage.experiment import (
    PARAMS_FILE,
    PARAMS_PICKLE_FILE,
    PROGRESS_CSV_FILE,
    RESULT_JSON_FILE,
)

# -- in a result (``report()`` / ``step()``) ---------------------------------------------------
DONE = "done"  # the trial has ended (auto-filled when not reported)
SHOULD_CHECKPOINT = "should_checkpoint"  # a class trainable asks for a checkpoint after this step
HOSTNAME = "hostname"
TRIAL_ID = "trial_id"
EXPERIMENT_TAG = "experiment_tag"
NODE_IP = "node_ip"
PID = "pid"
DEFAULT_METRIC = "_metric"  # Ray's anonymous metric; never required by strict metric checking
EPISODE_REWARD_MEAN = "episode_reward_mean"
MEAN_LOSS = "mean_loss"
MEAN_ACCURACY = "mean_accuracy"
EPISODES_THIS_ITER = "episodes_this_iter"
EPISODES_TOTAL = "episodes_total"
TIMESTEPS_THIS_ITER = "timesteps_this_iter"
TIMESTEPS_TOTAL = "timesteps_total"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TRAINING_ITERATION = "training_iteration"
TIMESTAMP = "timestamp"
TIME_SINCE_RESTORE = "time_since_restore"
TIMESTEPS_SINCE_RESTORE = "timesteps_since_restore"
ITERATIONS_SINCE_RESTORE = "iterations_since_restore"

DEFAULT_EXPERIMENT_INFO_KEYS = ("trainable_name", EXPERIMENT_TAG, TRIAL_ID)
DEFAULT_RESULT_KEYS = (TRAINING_ITERATION, TIME_TOTAL_S, MEAN_ACCURACY, MEAN_LOSS)
#: keys a result has before any iteration completed
DEBUG_METRICS = (TRIAL_ID, "experiment_id", "date", TIMESTAMP, PID, HOSTNAME, NODE_IP, "config")
AUTO_RESULT_KEYS = (
    TRAINING_ITERATION, TIME_TOTAL_S, EPISODES_TOTAL, TIMESTEPS_TOTAL, NODE_IP, HOSTNAME, PID,
    TIME_THIS_ITER_S, TIMESTAMP, "date", TIME_SINCE_RESTORE, TIMESTEPS_SINCE_RESTORE,
    ITERATIONS_SINCE_RESTORE, "config",
)
#: Ray's internal keywords, kept so that code naming them imports
RESULT_DUPLICATE = "__duplicate__"
TRIAL_INFO = "__trial_info__"
STDOUT_FILE = "__stdout_file__"
STDERR_FILE = "__stderr_file__"

# -- where results go ------------------------------------------------------------------------
#: the default ``RunConfig(storage_path)`` here (Ray's is ~/ray_results)
DEFAULT_RESULTS_DIR = os.path.expanduser(DEFAULT_STORAGE)
DEFAULT_EXPERIMENT_NAME = "default"
JOB_META_FILE = "job_status.json"
EXPR_META_FILE = "trial_status.json"
#: the prefix of config columns in ExperimentAnalysis' dataframes (``config/lr``)
CONFIG_PREFIX = "config"
EXPR_PARAM_FILE = PARAMS_FILE
EXPR_PARAM_PICKLE_FILE = PARAMS_PICKLE_FILE
EXPR_PROGRESS_FILE = PROGRESS_CSV_FILE
EXPR_RESULT_FILE = RESULT_JSON_FILE

__all__ = [
    "AUTO_RESULT_KEYS", "CONFIG_PREFIX", "DEBUG_METRICS", "DEFAULT_EXPERIMENT_INFO_KEYS",
    "DEFAULT_EXPERIMENT_NAME", "DEFAULT_METRIC", "DEFAULT_RESULTS_DIR", "DEFAULT_RESULT_KEYS", "DONE",
    "EPISODES_THIS_ITER", "EPISODES_TOTAL", "EPISODE_REWARD_MEAN", "EXPERIMENT_TAG", "EXPR_META_FILE",
    "EXPR_PARAM_FILE", "EXPR_PARAM_PICKLE_FILE", "EXPR_PROGRESS_FILE", "EXPR_RESULT_FILE", "HOSTNAME",
    "ITERATIONS_SINCE_RESTORE", "JOB_META_FILE", "MEAN_ACCURACY", "MEAN_LOSS", "NODE_IP", "PID",
    "RESULT_DUPLICATE", "SHOULD_CHECKPOINT", "STDERR_FILE", "STDOUT_FILE", "TIMESTAMP",
    "TIMESTEPS_SINCE_RESTORE", "TIMESTEPS_THIS_ITER", "TIMESTEPS_TOTAL", "TIME_SINCE_RESTORE",
    "TIME_THIS_ITER_S", "TIME_TOTAL_S", "TRAINING_ITERATION", "TRIAL_ID", "TRIAL_INFO",
]
