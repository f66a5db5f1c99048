/* Stub of the Arduino core's <Arduino.h>: Stream, Serial, micros(), millis(), yield(). */
#pragma once
#include <stddef.h>
#include <stdint.h>
class Print {
 public:
  virtual size_t write(uint8_t) = 0;
  virtual size_t write(const uint8_t *buffer, size_t size);
};
class Stream : public Print {
 public:
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;
};
class HardwareSerial : public Stream {
 public:
  void begin(unsigned long baud);
  operator bool();
  int available() override;
  int read() override;
  int peek() override;
  size_t write(uint8_t) override;
  using Print::write;
};
extern HardwareSerial Serial;
extern "C" unsigned long micros(void);
extern "C" unsigned long millis(void);
extern "C" void yield(void);
