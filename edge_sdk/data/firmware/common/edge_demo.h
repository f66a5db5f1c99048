/* edge_demo.h: run the model once on the sample input baked into the firmware and print
 * one line: "edge-sdk: <model>: top class <i> (score <s>), <n> <unit>". */
#ifndef EDGE_DEMO_H_
#define EDGE_DEMO_H_

#include "edge_protocol.h"

/* `output_is_float` selects how the output bytes are compared to find the top class. */
void edge_demo(const edge_port_t *port, const edge_model_t *model, const uint8_t *sample,
               int output_is_float);

#endif /* EDGE_DEMO_H_ */
