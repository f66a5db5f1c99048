/* edge_port.h: what each board port (firmware/port/<name>/) implements. */
#ifndef EDGE_PORT_H_
#define EDGE_PORT_H_

#include "edge_protocol.h"

const edge_port_t *edge_port_init(void);
/* Leave the program: semihosting SYS_EXIT under QEMU, exit() on the host, a halt elsewhere. */
void edge_port_exit(int code);

#endif /* EDGE_PORT_H_ */
