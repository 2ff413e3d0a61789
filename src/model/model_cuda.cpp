// The models on the CUDA backend: explicit instantiations of BlockStack, MaeModel and VitClassifier for
// CudaBackend<float>.
// Compiled only with MAE_CUDA (CMakeLists.txt adds this file to maecore then). Plain C++: the kernels are behind
// ops_cuda.h.
#define MAE_MODEL_TEMPLATES_ONLY  // the included .cpp files skip their own (CPU) instantiations
#include "model/vit_blocks.cpp"
#include "model/mae.cpp"
#include "model/vit.cpp"
#include "ops/cuda/backend_cuda.h"

namespace mae {
template class BlockStack<CudaBackend<float>>;
template class MaeModel<CudaBackend<float>>;
template class VitClassifier<CudaBackend<float>>;
}  // namespace mae
