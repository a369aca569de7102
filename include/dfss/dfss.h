// Umbrella header.
#pragma once

#include "dfss/attention.h"
#include "dfss/bert.h"
#include "dfss/compressed_scores.h"
#include "dfss/cpu.h"
#include "dfss/errors.h"
#include "dfss/selected_keys.h"
#include "dfss/tensor.h"
#include "dfss/tokenizer.h"
#include "dfss/topk.h"
#include "dfss/version.h"
