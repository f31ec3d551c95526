package spec_test

import (
	"fmt"

	"llamactl/spec"
)

func ExampleDecode() {
	data := []byte(`model: /models/qwen.gguf
temperature: 0
flash_attn: true
extra_args: [--swa-full]
`)
	s, err := spec.Decode(data, spec.YAML, "qwen.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Validate("qwen", nil); err != nil {
		fmt.Println(err)
		return
	}
	argv, _ := s.Args(nil)
	fmt.Println(argv)
	// Output: [--flash-attn on --model /models/qwen.gguf --temp 0 --swa-full]
}

func ExampleDecode_error() {
	_, err := spec.Decode([]byte("model: /m\ntemprature: 0.7\n"), spec.YAML, "qwen.yaml")
	fmt.Println(err)
	// Output: qwen.yaml:2:1: unknown key "temprature"; did you mean "temperature"?
}
