/* Stub of a CMSIS-Toolbox RTE_Components.h. */
#pragma once
#define CMSIS_device_header "stub_device.h"
