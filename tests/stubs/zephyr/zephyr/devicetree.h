/* Stub of Zephyr's <zephyr/devicetree.h>. */
#pragma once
#define DT_CHOSEN(prop) 0
