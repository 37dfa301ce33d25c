// The whole public API of lowbit in one include.
#pragma once

#include "lowbit/config.hpp"
#include "lowbit/cpu_features.hpp"
#include "lowbit/error.hpp"
#include "lowbit/format/half.hpp"
#include "lowbit/format/intn.hpp"
#include "lowbit/format/minifloat.hpp"
#include "lowbit/format/nf4.hpp"
#include "lowbit/format/packing.hpp"
#include "lowbit/format/scalar_format.hpp"
#include "lowbit/matrix_view.hpp"
#include "lowbit/quant/clipping.hpp"
#include "lowbit/quant/linear.hpp"
#include "lowbit/quantized_matrix.hpp"
#include "lowbit/scheme.hpp"
