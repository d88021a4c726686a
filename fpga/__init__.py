"""winogen.fpga: synthesis and place-and-route flows, hand-off bundles and reports."""
