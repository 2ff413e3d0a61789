// --device / --precision for the commands that can run on the GPU (bench, forward, pretrain).
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "ops/device_spec.h"

namespace mae::cli {

// --device / --precision → the run's DeviceSpec (ops/device_spec.h: the same errors for every command).
DeviceSpec select_device(const std::string& device, const std::string& precision);

// Adds --device and --precision to a subcommand.
void add_device_options(CLI::App* c, std::string& device, std::string& precision);
// Adds --cuda_graph (training loops: the step's device work replayed from a CUDA graph).
void add_cuda_graph_option(CLI::App* c, bool& on);
// --cuda_graph without --device cuda: throws mae::Error naming the flag.
void check_cuda_graph(bool on, const std::string& device);

}  // namespace mae::cli
