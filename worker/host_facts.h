// What a worker host offers, found at start: its name, its platform labels and its emulators.
#pragma once

#include <string>
#include <vector>

namespace assay {

std::string Hostname();
// Labels every worker offers: os, arch, executor, host, and one per emulator (DetectEmulators).
std::vector<std::string> DetectLabels(const std::string& executor);
// "qemu-system-arm=7.2.11" for every qemu-system-* on PATH: a qemu step goes only to a worker that
// has its emulator.
std::vector<std::string> DetectEmulators();

}  // namespace assay
