// Umbrella header.
#pragma once

#include "dfss/attention.h"
#include "dfss/cpu.h"
#include "dfss/errors.h"
#include "dfss/tensor.h"
#include "dfss/version.h"
